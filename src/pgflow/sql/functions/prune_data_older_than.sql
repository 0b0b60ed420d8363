-- Upstream documents this name and signature; other pgflow tools call it, so it returns void.
-- Runs still in progress are kept whatever their age: deleting them would strand workers.
CREATE OR REPLACE FUNCTION pgflow.prune_data_older_than(retention_interval interval)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_cutoff timestamptz := now() - prune_data_older_than.retention_interval;
    v_run_ids uuid[];
    v_queue record;
BEGIN
    DELETE FROM pgflow.workers AS w WHERE w.last_heartbeat_at < v_cutoff;

    SELECT array_agg(r.run_id) INTO v_run_ids
    FROM pgflow.runs AS r
    WHERE (r.status = 'completed' AND r.completed_at < v_cutoff)
       OR (r.status = 'failed' AND r.failed_at < v_cutoff);

    IF v_run_ids IS NOT NULL THEN
        -- Messages still in a queue belong to tasks that can never be claimed now; left
        -- behind, a worker would keep reading them and find no task.
        FOR v_queue IN
            SELECT t.flow_slug, array_agg(t.message_id) AS msg_ids
            FROM pgflow.step_tasks AS t
            WHERE t.run_id = ANY (v_run_ids)
              AND t.status IN ('queued', 'started')
              AND t.message_id IS NOT NULL
            GROUP BY t.flow_slug
        LOOP
            IF to_regclass(format('pgmq.%I', pgmq.format_table_name(v_queue.flow_slug, 'q'))) IS NOT NULL THEN
                PERFORM pgmq.delete(v_queue.flow_slug, v_queue.msg_ids);
            END IF;
        END LOOP;

        DELETE FROM pgflow.step_tasks AS t WHERE t.run_id = ANY (v_run_ids);
        DELETE FROM pgflow.step_states AS ss WHERE ss.run_id = ANY (v_run_ids);
        DELETE FROM pgflow.runs AS r WHERE r.run_id = ANY (v_run_ids);
    END IF;

    -- Archives grow forever otherwise; a flow whose queue was dropped by hand is skipped.
    FOR v_queue IN SELECT f.flow_slug FROM pgflow.flows AS f LOOP
        IF to_regclass(format('pgmq.%I', pgmq.format_table_name(v_queue.flow_slug, 'a'))) IS NOT NULL THEN
            EXECUTE format(
                'DELETE FROM pgmq.%I WHERE archived_at < $1',
                pgmq.format_table_name(v_queue.flow_slug, 'a')
            ) USING v_cutoff;
        END IF;
    END LOOP;
END;
$$;
