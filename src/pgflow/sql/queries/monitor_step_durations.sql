-- Durations (seconds, start to completion) of the completed steps of runs started in
-- [since, until), per step of the given flows, exact and interpolated (percentile_cont). Each
-- step is one index-only range of idx_step_states_completed_by_creation (a run's step states
-- are created with the run, so their created_at is its start). Steps that completed nothing in
-- the window are left out.
SELECT s.flow_slug, s.step_slug, x.count, x.avg, x.p95, x.max
FROM pgflow.steps AS s
CROSS JOIN LATERAL (
    SELECT count(*) AS count,
           avg(d.seconds) AS avg,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY d.seconds) AS p95,
           max(d.seconds) AS max
    FROM pgflow.step_states AS ss
    CROSS JOIN LATERAL (
        SELECT date_part('epoch', ss.completed_at - ss.started_at) AS seconds
    ) AS d
    WHERE ss.status = 'completed'
      AND ss.flow_slug = s.flow_slug AND ss.step_slug = s.step_slug
      AND ss.created_at >= %(since)s AND ss.created_at < %(until)s
) AS x
WHERE s.flow_slug = ANY (%(flows)s::text[]) AND x.count > 0
ORDER BY s.flow_slug, s.step_index
