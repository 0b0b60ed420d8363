-- What a worker does to get work, in one call (one round trip, one commit; additive to the
-- 0.8.1 contract, which keeps read + start_tasks as two calls): read up to qty visible
-- messages, start their tasks, and return each task with its attempt number and run input.
-- The run input comes once per run: with the first of the run's tasks (by message id), NULL
-- with the others, which take it from that one. The tasks of a map over a large input would
-- otherwise each carry the whole array (10,000 tasks, 10,000 copies).
--
-- It can run late in a transaction that also completed a task (the worker claims the next
-- step's tasks in the commit that queued them). The flow is the caller's: not repeated. Tasks
-- queued by a transaction that began after this one cannot be started by it, since started_at
-- would precede queued_at: their messages are made visible again at once for the next poll
-- instead.
--
-- vt: how long the read hides the messages. A started task's message is hidden for its step's
-- timeout + 2 s; when vt is exactly that, the message is not updated a second time (a worker
-- passes it when all its flow's steps share one timeout).
CREATE OR REPLACE FUNCTION pgflow.claim_tasks(flow_slug text, qty int, vt int, worker_id uuid)
RETURNS TABLE (
    run_id uuid,
    step_slug text,
    input jsonb,
    msg_id bigint,
    task_index int,
    attempt int,
    flow_input jsonb
)
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
-- Its statements take arrays: a custom plan per call (the default while a generic plan looks
-- dearer for short arrays) would plan them all again on every call.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_read bigint[];
    v_later bigint[];
    v_started bigint;
BEGIN
    v_read := pgflow._on_queue(
        claim_tasks.flow_slug, 'read', p_seconds => claim_tasks.vt, p_qty => claim_tasks.qty
    );
    IF v_read IS NULL THEN
        RETURN;
    END IF;

    RETURN QUERY
    SELECT s.run_id, s.step_slug, s.input, s.msg_id, s.task_index, s.attempt, s.flow_input
    FROM pgflow._start_tasks(claim_tasks.flow_slug, v_read, claim_tasks.worker_id, claim_tasks.vt, NULL) AS s;

    -- A message that started nothing is usually a redelivery (its task running or done), but
    -- its task may have been queued by a transaction that began after this one: started_at
    -- cannot precede queued_at, so _start_tasks left it, and its message is made visible again
    -- for the next poll. Looked for only then: on every claim, with statistics taken while the
    -- table was small, this query read every task of the flow.
    GET DIAGNOSTICS v_started = ROW_COUNT;
    IF v_started < cardinality(v_read) THEN
        SELECT array_agg(t.message_id) INTO v_later
        FROM pgflow.step_tasks AS t
        WHERE t.flow_slug = claim_tasks.flow_slug
          AND t.message_id = ANY (v_read)
          AND t.status = 'queued'
          AND t.queued_at > now();
        IF v_later IS NOT NULL THEN
            PERFORM pgflow.set_vt_batch(
                claim_tasks.flow_slug, v_later, array_fill(0, ARRAY[cardinality(v_later)])
            );
        END IF;
    END IF;
END;
$$;
