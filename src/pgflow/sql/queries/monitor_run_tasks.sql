-- One run's tasks, in step order then task order.
SELECT t.step_slug, t.task_index, t.status, t.attempts_count AS attempts, t.message_id,
       t.queued_at, t.started_at, t.completed_at, t.failed_at, t.output,
       t.error_message AS error, t.last_worker_id AS worker_id
FROM pgflow.step_tasks AS t
JOIN pgflow.steps AS s ON s.flow_slug = t.flow_slug AND s.step_slug = t.step_slug
WHERE t.run_id = %(run_id)s
ORDER BY s.step_index, t.task_index
