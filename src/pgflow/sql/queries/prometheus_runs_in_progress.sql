-- Every run in progress, however long ago it started, per flow: a range of
-- idx_runs_status_started_at.
SELECT r.flow_slug, count(*) AS runs
FROM pgflow.runs AS r
WHERE r.status = 'started'
GROUP BY r.flow_slug
