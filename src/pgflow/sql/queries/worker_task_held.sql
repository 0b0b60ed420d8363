-- Second half (after worker_lock_run, in the same transaction): is the task still the attempt
-- this worker claimed? Not when it was recovered as stalled meanwhile and claimed again, or
-- already completed or failed by a report of that other execution.
SELECT t.status = 'started'
       AND t.last_worker_id = %(worker_id)s
       AND t.attempts_count = %(attempt)s AS held
FROM pgflow.step_tasks AS t
WHERE t.run_id = %(run_id)s AND t.step_slug = %(step_slug)s AND t.task_index = %(task_index)s
