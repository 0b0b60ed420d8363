-- One run's steps in flow order, with what their tasks add up to: attempts (the most any task
-- needed), tasks done and failed, and the output (a map step's is its tasks' outputs in order).
-- skip_reason and skipped_at (conditional steps) are read through the row's JSON, so that this
-- also works on a core without them (they are then NULL).
SELECT ss.step_slug, s.step_type, s.step_index, ss.status,
       ss.created_at, ss.started_at, ss.completed_at, ss.failed_at,
       ss.initial_tasks AS tasks_total, ss.error_message AS error,
       to_jsonb(ss) ->> 'skip_reason' AS skip_reason,
       (to_jsonb(ss) ->> 'skipped_at')::timestamptz AS skipped_at,
       coalesce(t.attempts, 0) AS attempts,
       coalesce(t.done, 0) AS tasks_done,
       coalesce(t.failed, 0) AS tasks_failed,
       CASE WHEN ss.status <> 'completed' THEN NULL
            WHEN s.step_type = 'map' THEN coalesce(t.outputs, '[]'::jsonb)
            ELSE t.outputs -> 0
       END AS output
FROM pgflow.step_states AS ss
JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
LEFT JOIN LATERAL (
    SELECT max(st.attempts_count) AS attempts,
           count(*) FILTER (WHERE st.status = 'completed') AS done,
           count(*) FILTER (WHERE st.status = 'failed') AS failed,
           jsonb_agg(st.output ORDER BY st.task_index) FILTER (WHERE st.status = 'completed')
               AS outputs
    FROM pgflow.step_tasks AS st
    WHERE st.run_id = ss.run_id AND st.step_slug = ss.step_slug
) AS t ON true
WHERE ss.run_id = %(run_id)s
ORDER BY s.step_index
