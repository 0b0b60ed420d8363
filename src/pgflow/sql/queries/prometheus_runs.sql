-- The runs started in the last %(window)s seconds, per flow and current status: per flow, an
-- index-only range scan of idx_runs_flow_started_at (it includes the status). A count over the
-- whole table would read every run ever kept at each scrape.
SELECT f.flow_slug, r.status, count(*) AS runs
FROM pgflow.flows AS f
JOIN pgflow.runs AS r ON r.flow_slug = f.flow_slug
WHERE r.started_at >= now() - make_interval(secs => %(window)s)
GROUP BY f.flow_slug, r.status
