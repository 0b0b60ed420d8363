-- Many completions and the next claim in one statement and one commit (additive to the 0.8.1
-- contract): a worker sends every result that finished while its previous report was in
-- flight, so a busy worker pays one round trip, one WAL flush and one NOTIFY lock per batch
-- instead of per task.
--
-- p_completions is a JSON array of {"run_id", "step_slug", "task_index", "output"} objects
-- ("output" must be present; JSON null is a null output). The batch reaches the state that
-- complete_task calls, one per completion, sorted by run, step and task index (then array
-- position), would reach: a late, repeated or premature completion, or one of a failed or
-- cancelled run, changes what complete_task would change. The common case goes set-based
-- (_complete_task_batch, which also says how the order of events differs). The runs are
-- locked in run_id order whatever the order given: two workers completing tasks of the same
-- runs cannot deadlock. Any error rolls the whole batch back.
--
-- Then up to p_claim_qty ready tasks of p_flow_slug are claimed (none when p_claim_qty < 1 or
-- p_flow_slug is null): first those of the steps the batch started (of p_flow_slug, without a
-- start delay), started as they are inserted (see _complete_task_batch), then as claim_tasks
-- does. So a worker finishes the runs it works on before it takes new ones, and those tasks
-- are not written a second time to be read and started; their messages, hidden for the
-- step's timeout + 2 s as claim_tasks would hide them, keep read_ct 0. The flow is a
-- parameter because a batch need not hold any task that was still running.
CREATE OR REPLACE FUNCTION pgflow.complete_tasks_and_claim(
    p_completions jsonb,
    p_claim_qty int,
    p_claim_vt int,
    p_worker_id uuid,
    p_flow_slug text
)
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
DECLARE
    v_bad record;
    v_run_ids uuid[];
    v_step_slugs text[];
    v_task_indexes int[];
    v_outputs jsonb[];
    v_claim_qty int := 0;
    v_started bigint[];
BEGIN
    IF jsonb_typeof(p_completions) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'p_completions must be a JSON array of completions, got %',
            coalesce(jsonb_typeof(p_completions), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Checked before anything is completed, so a malformed batch names its first bad element.
    SELECT c.position, c.value INTO v_bad
    FROM jsonb_array_elements(p_completions) WITH ORDINALITY AS c(value, position)
    WHERE jsonb_typeof(c.value) IS DISTINCT FROM 'object'
       OR NOT c.value ?& ARRAY['run_id', 'step_slug', 'task_index', 'output']
       OR jsonb_typeof(c.value -> 'run_id') <> 'string'
       OR jsonb_typeof(c.value -> 'step_slug') <> 'string'
       OR jsonb_typeof(c.value -> 'task_index') <> 'number'
    ORDER BY c.position
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'completion % of p_completions is not an object with run_id (string), '
            'step_slug (string), task_index (number) and output: %', v_bad.position, v_bad.value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT array_agg((c.value ->> 'run_id')::uuid ORDER BY c.position),
           array_agg(c.value ->> 'step_slug' ORDER BY c.position),
           array_agg((c.value ->> 'task_index')::int ORDER BY c.position),
           array_agg(c.value -> 'output' ORDER BY c.position)
    INTO v_run_ids, v_step_slugs, v_task_indexes, v_outputs
    FROM jsonb_array_elements(p_completions) WITH ORDINALITY AS c(value, position);
    IF p_flow_slug IS NOT NULL AND p_claim_qty > 0 THEN
        v_claim_qty := p_claim_qty;
    END IF;
    -- One completion (an idle worker reports each at once) takes complete_task's lean path,
    -- which costs fewer statements than the set-based one for a single task.
    IF cardinality(v_run_ids) = 1 THEN
        PERFORM pgflow.complete_task(v_run_ids[1], v_step_slugs[1], v_task_indexes[1], v_outputs[1]);
    ELSIF v_run_ids IS NOT NULL THEN
        -- The tasks it releases that the freed slots can take are started as they are
        -- inserted: this worker continues the runs it is working on before it takes new ones
        -- from the queue, and writes each of those tasks and messages once.
        v_started := pgflow._complete_task_batch(
            v_run_ids, v_step_slugs, v_task_indexes, v_outputs, p_flow_slug, p_worker_id, v_claim_qty
        );
    END IF;

    IF cardinality(v_started) > 0 THEN
        RETURN QUERY
        SELECT s.run_id, s.step_slug, s.input, s.msg_id, s.task_index, s.attempt, s.flow_input
        FROM pgflow._start_tasks(p_flow_slug, '{}', p_worker_id, NULL, v_started) AS s;
        v_claim_qty := v_claim_qty - cardinality(v_started);
    END IF;
    IF v_claim_qty < 1 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT * FROM pgflow.claim_tasks(p_flow_slug, v_claim_qty, p_claim_vt, p_worker_id);
END;
$$;
