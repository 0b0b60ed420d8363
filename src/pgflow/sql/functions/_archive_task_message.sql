-- Archives the message of one task (if it has one): a late report for a step that no longer
-- runs (it was skipped) must not leave the message to be read again.
CREATE OR REPLACE FUNCTION pgflow._archive_task_message(p_run_id uuid, p_step_slug text, p_task_index int)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_flow_slug text;
    v_message_id bigint;
BEGIN
    SELECT t.flow_slug, t.message_id INTO v_flow_slug, v_message_id
    FROM pgflow.step_tasks AS t
    WHERE t.run_id = p_run_id AND t.step_slug = p_step_slug AND t.task_index = p_task_index;

    IF v_message_id IS NOT NULL THEN
        PERFORM pgmq.archive(v_flow_slug, v_message_id);
    END IF;
END;
$$;
