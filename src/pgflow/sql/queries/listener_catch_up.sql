-- The transitions stamped at or after %(since)s, rebuilt from the tables' timestamps, oldest
-- first: what a listener may have missed while its LISTEN connection was down.
--
-- Only runs that could have changed since then are read, each through an index: those started
-- since (idx_runs_started_at), those the listener knew to be running (%(active)s, by primary
-- key) and those running now (idx_runs_status_started_at). A run that finished in the gap was
-- running before it, so the finish times need no index. Their step states come by run id
-- (idx_step_states_run_id). Within one timestamp (one transaction) a run starts before its
-- steps, a step's end precedes the start of the steps after it, and the run ends last: the
-- order in which the core emits them.
WITH candidate AS (
    SELECT r.run_id, r.flow_slug, r.status, r.started_at, r.completed_at, r.failed_at
    FROM pgflow.runs AS r
    WHERE r.started_at >= %(since)s
    UNION
    SELECT r.run_id, r.flow_slug, r.status, r.started_at, r.completed_at, r.failed_at
    FROM pgflow.runs AS r
    WHERE r.run_id = ANY (%(active)s::uuid[])
    UNION
    SELECT r.run_id, r.flow_slug, r.status, r.started_at, r.completed_at, r.failed_at
    FROM pgflow.runs AS r
    WHERE r.status = 'started'
)
SELECT e.event_type, e.run_id, e.flow_slug, e.step_slug, e.status
FROM (
    SELECT 'run:started' AS event_type, c.run_id, c.flow_slug, NULL::text AS step_slug,
           'started' AS status, c.started_at AS at, -1 AS step_index, 0 AS phase
    FROM candidate AS c
    WHERE c.started_at >= %(since)s
    UNION ALL
    SELECT 'step:started', c.run_id, c.flow_slug, ss.step_slug, 'started', ss.started_at,
           s.step_index, 0
    FROM candidate AS c
    JOIN pgflow.step_states AS ss ON ss.run_id = c.run_id
    JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
    WHERE ss.started_at >= %(since)s
    UNION ALL
    -- skipped_at is read as JSON: a core without conditional steps has no such column.
    SELECT 'step:' || ss.status, c.run_id, c.flow_slug, ss.step_slug, ss.status, ended.at,
           s.step_index, 1
    FROM candidate AS c
    JOIN pgflow.step_states AS ss ON ss.run_id = c.run_id
    JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
    CROSS JOIN LATERAL (
        SELECT coalesce(ss.completed_at, ss.failed_at,
                        (to_jsonb(ss) ->> 'skipped_at')::timestamptz) AS at
    ) AS ended
    WHERE ss.status IN ('completed', 'failed', 'skipped')
      AND ended.at >= %(since)s
    UNION ALL
    SELECT 'run:' || c.status, c.run_id, c.flow_slug, NULL, c.status,
           coalesce(c.completed_at, c.failed_at), 2147483647, 2
    FROM candidate AS c
    WHERE c.status IN ('completed', 'failed')
      AND coalesce(c.completed_at, c.failed_at) >= %(since)s
) AS e
WHERE %(flows)s::text[] IS NULL OR e.flow_slug = ANY (%(flows)s)
ORDER BY e.at, e.run_id, e.step_index, e.phase
