-- First half of the ownership check before a transactional task completes: the run's lock.
-- Every change of a started task (complete_task, fail_task, stalled-task recovery,
-- cancellation) takes it first, so the task row read next stays as read until the completion.
SELECT 1 FROM pgflow.runs WHERE run_id = %(run_id)s FOR UPDATE
