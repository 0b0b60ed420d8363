-- Durations (start to finish, seconds) of the finished steps of the runs started in the last
-- %(window)s seconds, per flow, step, status and histogram bucket (buckets as in
-- prometheus_run_durations). A run's step states are created with it, so the window is a
-- range on created_at: per flow, idx_step_states_completed_by_creation (index-only) and
-- idx_step_states_failed_by_creation, one branch per status so that each partial index
-- applies.
SELECT f.flow_slug, ss.step_slug, ss.status, b.bucket, count(*) AS observations,
       sum(ss.seconds) AS seconds
FROM pgflow.flows AS f
CROSS JOIN LATERAL (
    SELECT c.step_slug, 'completed' AS status,
           extract(epoch FROM c.completed_at - c.started_at)::float8 AS seconds
    FROM pgflow.step_states AS c
    WHERE c.flow_slug = f.flow_slug AND c.status = 'completed'
      AND c.created_at >= now() - make_interval(secs => %(window)s)
    UNION ALL
    SELECT x.step_slug, 'failed', extract(epoch FROM x.failed_at - x.started_at)::float8
    FROM pgflow.step_states AS x
    WHERE x.flow_slug = f.flow_slug AND x.status = 'failed' AND x.started_at IS NOT NULL
      AND x.created_at >= now() - make_interval(secs => %(window)s)
) AS ss
CROSS JOIN LATERAL (
    SELECT count(*) AS bucket FROM unnest(%(bounds)s::float8[]) AS u(bound)
    WHERE u.bound < ss.seconds
) AS b
GROUP BY f.flow_slug, ss.step_slug, ss.status, b.bucket
