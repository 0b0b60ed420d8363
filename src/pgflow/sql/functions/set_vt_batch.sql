-- pgmq's own set_vt takes one offset for all ids; tasks of different steps need different
-- timeouts, and one UPDATE is far cheaper than a set_vt call per message.
-- Without SET search_path, as upstream; every name is qualified.
CREATE OR REPLACE FUNCTION pgflow.set_vt_batch(queue_name text, msg_ids bigint[], vt_offsets integer[])
RETURNS TABLE (
    msg_id bigint,
    read_ct integer,
    enqueued_at timestamptz,
    vt timestamptz,
    message jsonb,
    headers jsonb
)
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    IF set_vt_batch.msg_ids IS NULL OR set_vt_batch.vt_offsets IS NULL
       OR pg_catalog.cardinality(set_vt_batch.msg_ids) = 0
       OR pg_catalog.cardinality(set_vt_batch.vt_offsets) = 0 THEN
        RETURN;
    END IF;

    IF pg_catalog.cardinality(set_vt_batch.msg_ids) <> pg_catalog.cardinality(set_vt_batch.vt_offsets) THEN
        RAISE EXCEPTION 'msg_ids length (%) must equal vt_offsets length (%)',
            pg_catalog.cardinality(set_vt_batch.msg_ids), pg_catalog.cardinality(set_vt_batch.vt_offsets);
    END IF;

    -- Columns are listed rather than q.*: newer pgmq versions add columns (last_read_at).
    RETURN QUERY EXECUTE pg_catalog.format(
        $sql$
        UPDATE pgmq.%I AS q
        SET vt = pg_catalog.clock_timestamp() + o.vt_offset * interval '1 second'
        FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS o(msg_id, vt_offset)
        WHERE q.msg_id = o.msg_id
        RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
        $sql$,
        pgmq.format_table_name(set_vt_batch.queue_name, 'q')
    )
    USING set_vt_batch.msg_ids, set_vt_batch.vt_offsets;
END;
$$;
