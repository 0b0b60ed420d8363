-- Phase two of polling: the worker has read messages with a short visibility timeout; this
-- claims their tasks, hides the messages for the step's whole timeout and hands out inputs.
-- The work is _start_tasks', shared with claim_tasks.
CREATE OR REPLACE FUNCTION pgflow.start_tasks(flow_slug text, msg_ids bigint[], worker_id uuid)
RETURNS SETOF pgflow.step_task_record
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
-- msg_ids is an array: with the default plan cache mode its statement would be planned again
-- on every call (a generic plan looks dearer for short arrays).
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT s.flow_slug, s.run_id, s.step_slug, s.input, s.msg_id, s.task_index
    FROM pgflow._start_tasks(start_tasks.flow_slug, start_tasks.msg_ids, start_tasks.worker_id, NULL, NULL) AS s;
END;
$$;
