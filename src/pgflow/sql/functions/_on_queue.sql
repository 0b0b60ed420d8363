-- A queue operation of the hot paths: 'send' (p_messages, visible after p_seconds; the new ids
-- in the messages' order), 'read' (up to p_qty visible messages, hidden for p_seconds; their
-- ids) or 'archive' (p_msg_ids; the ids archived). Through the queue's own statements when it
-- has them (_create_queue_statements: planned once per connection), else through pgmq's
-- functions, which do the same and plan their statement on every call.
CREATE OR REPLACE FUNCTION pgflow._on_queue(
    p_queue_name text,
    p_op text,
    p_msg_ids bigint[] DEFAULT NULL,
    p_messages jsonb[] DEFAULT NULL,
    p_seconds integer DEFAULT 0,
    p_qty integer DEFAULT 0
)
RETURNS bigint[]
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_function text := '_queue_' || lower(p_queue_name);
    v_ids bigint[];
BEGIN
    IF to_regproc('pgflow.' || quote_ident(v_function)) IS NOT NULL THEN
        EXECUTE format('SELECT pgflow.%I($1, $2, $3, $4, $5)', v_function)
        INTO v_ids
        USING p_op, p_msg_ids, p_messages, p_seconds, p_qty;
    ELSIF p_op = 'send' THEN
        SELECT array_agg(m.msg_id ORDER BY m.position) INTO v_ids
        FROM pgmq.send_batch(p_queue_name, p_messages, p_seconds) WITH ORDINALITY AS m(msg_id, position);
    ELSIF p_op = 'read' THEN
        SELECT array_agg(m.msg_id ORDER BY m.msg_id) INTO v_ids
        FROM pgmq.read(p_queue_name, p_seconds, p_qty) AS m;
    ELSIF p_op = 'archive' THEN
        SELECT array_agg(a.msg_id ORDER BY a.msg_id) INTO v_ids
        FROM pgmq.archive(p_queue_name, p_msg_ids) AS a(msg_id);
    ELSE
        RAISE EXCEPTION 'unknown queue operation %', p_op;
    END IF;
    RETURN v_ids;
END;
$$;
