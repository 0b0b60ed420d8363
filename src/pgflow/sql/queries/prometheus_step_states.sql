-- The step states of the runs started in the last %(window)s seconds, per flow, step and
-- status: the runs as in prometheus_runs, then each run's steps by idx_step_states_run_id
-- (OFFSET 0 keeps that lookup per run: joined flat, the planner may scan the whole table).
SELECT f.flow_slug, ss.step_slug, ss.status, count(*) AS steps
FROM pgflow.flows AS f
JOIN pgflow.runs AS r ON r.flow_slug = f.flow_slug
CROSS JOIN LATERAL (
    SELECT s.step_slug, s.status FROM pgflow.step_states AS s WHERE s.run_id = r.run_id OFFSET 0
) AS ss
WHERE r.started_at >= now() - make_interval(secs => %(window)s)
GROUP BY f.flow_slug, ss.step_slug, ss.status
