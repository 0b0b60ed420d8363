-- The most recently finished (completed, failed or cancelled) runs first
-- (idx_runs_finished_at of migration 0008).
SELECT r.run_id, r.flow_slug, r.status, r.remaining_steps,
       r.started_at, r.completed_at, r.failed_at,
       (SELECT ss.error_message FROM pgflow.step_states AS ss
        WHERE ss.run_id = r.run_id AND ss.status = 'failed'
        ORDER BY ss.failed_at LIMIT 1) AS error_message,
       to_jsonb(r) - 'input' - 'output' AS run_control
FROM pgflow.runs AS r
WHERE coalesce(r.completed_at, r.failed_at, r.cancelled_at) >= %(since)s
ORDER BY coalesce(r.completed_at, r.failed_at, r.cancelled_at) DESC, r.run_id DESC
LIMIT %(limit)s
