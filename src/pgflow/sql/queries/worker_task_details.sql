-- What a handler's context needs beyond the task record: the attempt number and the run input
-- (the record carries the run input only inside single-step inputs), as JSON text: the worker
-- parses it once per run.
SELECT t.run_id, t.step_slug, t.task_index, t.attempts_count AS attempt,
       r.input::text AS flow_input
FROM pgflow.step_tasks AS t
JOIN pgflow.runs AS r ON r.run_id = t.run_id
WHERE t.message_id = ANY(%(msg_ids)s) AND t.flow_slug = %(flow_slug)s
