-- The statements of the hot paths on one flow's queue (send, read, archive), written for its
-- own tables as one function, pgflow._queue_<queue>(op, ...): see _on_queue, which calls it.
-- pgmq's functions build their statement with format() and plan it on every call (read,
-- send_batch and archive: 0.15-0.3 ms a call on the benchmark machine, several times what
-- running the statement takes); a function's static statements are planned once per
-- connection. The prefix _queue_ is theirs alone (no other function of the schema has it): a
-- flow's queue statements are objects of that flow, like its queue's tables.
--
-- They do what pgmq's send_batch (one visibility time for the batch), read (oldest visible
-- first, SKIP LOCKED) and archive do, on the columns the queue's tables have: the column lists
-- are read from the catalog, so the statements follow the installed pgmq's layout (headers and
-- last_read_at are newer than 1.5). Made by create_flow for a new queue and again for every
-- flow by each install that changes the functions; a queue without its function (dropped, or
-- made before) is served by pgmq's functions, so nothing depends on it being there.
--
-- p_replace: write it again even when it exists (the installer, after pgmq or this file
-- changed). Concurrent calls for one queue wait for each other (advisory lock), and a call
-- that finds the function made meanwhile leaves it.
CREATE OR REPLACE FUNCTION pgflow._create_queue_statements(
    p_queue_name text,
    p_replace boolean DEFAULT false
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_function text := '_queue_' || lower(p_queue_name);
    v_queue regclass := to_regclass(format('pgmq.%I', 'q_' || lower(p_queue_name)));
    v_archive regclass := to_regclass(format('pgmq.%I', 'a_' || lower(p_queue_name)));
    v_columns text;
    v_has_last_read boolean;
BEGIN
    IF v_queue IS NULL OR v_archive IS NULL THEN
        RETURN;  -- no such queue: pgmq's functions report it when it is used
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtext('pgflow._create_queue_statements'),
        pg_catalog.hashtext(v_function)
    );
    -- Read from the catalog table, not its cache: a function another call made while this one
    -- waited for the lock is seen.
    IF NOT p_replace AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_proc AS p
        WHERE p.proname = v_function AND p.pronamespace = 'pgflow'::regnamespace
    ) THEN
        RETURN;
    END IF;

    -- The columns an archived message keeps: those of the queue table the archive has too
    -- (archived_at is the archive's own); and whether a read stamps last_read_at.
    SELECT string_agg(quote_ident(q.attname), ', ' ORDER BY q.attnum) FILTER (WHERE a.attnum IS NOT NULL),
           coalesce(bool_or(q.attname = 'last_read_at'), false)
    INTO v_columns, v_has_last_read
    FROM pg_catalog.pg_attribute AS q
    LEFT JOIN pg_catalog.pg_attribute AS a
      ON a.attrelid = v_archive AND a.attname = q.attname AND a.attnum > 0 AND NOT a.attisdropped
    WHERE q.attrelid = v_queue AND q.attnum > 0 AND NOT q.attisdropped;

    EXECUTE format(
        $fn$
        CREATE OR REPLACE FUNCTION pgflow.%1$I(
            p_op text,
            p_msg_ids bigint[],
            p_messages jsonb[],
            p_seconds integer,
            p_qty integer
        )
        RETURNS bigint[]
        LANGUAGE plpgsql
        VOLATILE
        SET search_path = ''
        -- One plan per connection, made whatever the queue held then: it must reach messages
        -- by their keys (as pgmq's plans do) even if it was made while the queue was small.
        SET plan_cache_mode = force_generic_plan
        SET enable_seqscan = off
        AS $body$
        DECLARE
            v_vt timestamptz;
            v_ids bigint[];
        BEGIN
            IF p_op = 'send' THEN
                -- One visibility time for the batch; the messages are inserted in array order,
                -- so their ids, sorted, are in that order.
                v_vt := clock_timestamp() + make_interval(secs => p_seconds);
                WITH sent AS (
                    INSERT INTO %2$s (vt, message)
                    SELECT v_vt, m.message FROM unnest(p_messages) AS m(message)
                    RETURNING msg_id
                )
                SELECT array_agg(sent.msg_id ORDER BY sent.msg_id) INTO v_ids FROM sent;
            ELSIF p_op = 'read' THEN
                WITH picked AS (
                    SELECT q.msg_id FROM %2$s AS q
                    WHERE q.vt <= clock_timestamp()
                    ORDER BY q.msg_id
                    LIMIT p_qty
                    FOR UPDATE SKIP LOCKED
                ),
                taken AS (
                    UPDATE %2$s AS q
                    SET %4$s
                        vt = clock_timestamp() + make_interval(secs => p_seconds),
                        read_ct = q.read_ct + 1
                    FROM picked
                    WHERE q.msg_id = picked.msg_id
                    RETURNING q.msg_id
                )
                SELECT array_agg(taken.msg_id ORDER BY taken.msg_id) INTO v_ids FROM taken;
            ELSIF p_op = 'archive' THEN
                WITH removed AS (
                    DELETE FROM %2$s AS q WHERE q.msg_id = ANY (p_msg_ids)
                    RETURNING %5$s
                ),
                kept AS (
                    INSERT INTO %3$s (%5$s)
                    SELECT %5$s FROM removed
                    RETURNING msg_id
                )
                SELECT array_agg(kept.msg_id ORDER BY kept.msg_id) INTO v_ids FROM kept;
            ELSE
                RAISE EXCEPTION 'unknown queue operation %%', p_op;
            END IF;
            RETURN v_ids;
        END;
        $body$
        $fn$,
        v_function, v_queue, v_archive,
        CASE WHEN v_has_last_read THEN 'last_read_at = clock_timestamp(),' ELSE '' END,
        v_columns
    );
END;
$$;
