-- The counting variant of prune_data_older_than (which keeps upstream's void signature):
-- deletes finished runs older than the cutoff with their states and tasks, workers silent
-- since then, and archived queue messages older than it; optionally for some flows only.
-- Runs still in progress are kept whatever their age.
CREATE OR REPLACE FUNCTION pgflow.prune_runs(older_than interval, flow_slugs text[] DEFAULT NULL)
RETURNS TABLE (
    runs bigint,
    step_states bigint,
    step_tasks bigint,
    workers bigint,
    archived_messages bigint
)
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_cutoff timestamptz := now() - prune_runs.older_than;
    v_run_ids uuid[];
    v_queue record;
    v_count bigint;
BEGIN
    IF prune_runs.older_than IS NULL OR prune_runs.older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval, got %', prune_runs.older_than;
    END IF;
    runs := 0; step_states := 0; step_tasks := 0; workers := 0; archived_messages := 0;

    DELETE FROM pgflow.workers AS w
    WHERE w.last_heartbeat_at < v_cutoff
      AND (prune_runs.flow_slugs IS NULL OR w.queue_name = ANY (prune_runs.flow_slugs));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    workers := v_count;

    SELECT array_agg(r.run_id) INTO v_run_ids
    FROM pgflow.runs AS r
    WHERE ((r.status = 'completed' AND r.completed_at < v_cutoff)
        OR (r.status = 'failed' AND r.failed_at < v_cutoff)
        OR (r.status = 'cancelled' AND r.cancelled_at < v_cutoff))
      AND (prune_runs.flow_slugs IS NULL OR r.flow_slug = ANY (prune_runs.flow_slugs));

    IF v_run_ids IS NOT NULL THEN
        -- Unclaimable messages of those runs would otherwise be read forever.
        FOR v_queue IN
            SELECT t.flow_slug, array_agg(t.message_id) AS msg_ids
            FROM pgflow.step_tasks AS t
            WHERE t.run_id = ANY (v_run_ids)
              AND t.status IN ('queued', 'started')
              AND t.message_id IS NOT NULL
            GROUP BY t.flow_slug
        LOOP
            IF pg_catalog.to_regclass(pg_catalog.format('pgmq.%I', pgmq.format_table_name(v_queue.flow_slug, 'q'))) IS NOT NULL THEN
                PERFORM pgmq.delete(v_queue.flow_slug, v_queue.msg_ids);
            END IF;
        END LOOP;
        DELETE FROM pgflow.step_tasks AS t WHERE t.run_id = ANY (v_run_ids);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        step_tasks := v_count;
        DELETE FROM pgflow.step_states AS ss WHERE ss.run_id = ANY (v_run_ids);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        step_states := v_count;
        DELETE FROM pgflow.runs AS r WHERE r.run_id = ANY (v_run_ids);
        GET DIAGNOSTICS v_count = ROW_COUNT;
        runs := v_count;
    END IF;

    FOR v_queue IN
        SELECT f.flow_slug FROM pgflow.flows AS f
        WHERE prune_runs.flow_slugs IS NULL OR f.flow_slug = ANY (prune_runs.flow_slugs)
    LOOP
        IF pg_catalog.to_regclass(pg_catalog.format('pgmq.%I', pgmq.format_table_name(v_queue.flow_slug, 'a'))) IS NOT NULL THEN
            EXECUTE pg_catalog.format(
                'DELETE FROM pgmq.%I WHERE archived_at < $1',
                pgmq.format_table_name(v_queue.flow_slug, 'a')
            ) USING v_cutoff;
            GET DIAGNOSTICS v_count = ROW_COUNT;
            archived_messages := archived_messages + v_count;
        END IF;
    END LOOP;
    RETURN NEXT;
END;
$$;
