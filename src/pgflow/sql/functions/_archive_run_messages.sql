-- A failed run must not hand out more work: every message of its queued or started tasks goes
-- to the archive in one pgmq call. The task rows keep their status for the record.
CREATE OR REPLACE FUNCTION pgflow._archive_run_messages(run_id uuid)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_flow_slug text;
    v_msg_ids bigint[];
BEGIN
    SELECT r.flow_slug INTO v_flow_slug FROM pgflow.runs AS r WHERE r.run_id = _archive_run_messages.run_id;

    SELECT array_agg(t.message_id ORDER BY t.message_id) INTO v_msg_ids
    FROM pgflow.step_tasks AS t
    WHERE t.run_id = _archive_run_messages.run_id
      AND t.status IN ('queued', 'started')
      AND t.message_id IS NOT NULL;

    IF v_msg_ids IS NOT NULL THEN
        PERFORM pgmq.archive(v_flow_slug, v_msg_ids);
    END IF;
END;
$$;
