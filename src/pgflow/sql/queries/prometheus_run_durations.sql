-- Durations (start to finish, seconds) of the finished runs started in the last %(window)s
-- seconds, per flow, status and histogram bucket. Bucket i holds the durations d with
-- bounds[i] < d <= bounds[i + 1] (1-based; bucket 0: d <= bounds[1]; the last: above every
-- bound), so that cumulative sums give Prometheus' "le" buckets. Per flow, an index-only range
-- scan of idx_runs_flow_started_at (it includes the status and the finish times).
SELECT f.flow_slug, r.status, b.bucket, count(*) AS observations, sum(d.seconds) AS seconds
FROM pgflow.flows AS f
JOIN pgflow.runs AS r ON r.flow_slug = f.flow_slug
CROSS JOIN LATERAL (
    SELECT extract(epoch FROM coalesce(r.completed_at, r.failed_at) - r.started_at)::float8
        AS seconds
) AS d
CROSS JOIN LATERAL (
    SELECT count(*) AS bucket FROM unnest(%(bounds)s::float8[]) AS u(bound)
    WHERE u.bound < d.seconds
) AS b
WHERE r.started_at >= now() - make_interval(secs => %(window)s)
  AND r.status IN ('completed', 'failed')
GROUP BY f.flow_slug, r.status, b.bucket
