-- complete_task and claim_tasks in one statement: a worker reports a result and, in the same
-- commit, takes the tasks that result made ready (usually the next step of the same run), so
-- a hop of a chain costs one round trip and one commit. Additive to the 0.8.1 contract.
CREATE OR REPLACE FUNCTION pgflow.complete_task_and_claim(
    p_run_id uuid,
    p_step_slug text,
    p_task_index int,
    p_output jsonb,
    p_claim_qty int,
    p_claim_vt int,
    p_worker_id uuid
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
AS $$
DECLARE
    v_flow_slug text;
BEGIN
    SELECT t.flow_slug INTO v_flow_slug
    FROM pgflow.complete_task(p_run_id, p_step_slug, p_task_index, p_output) AS t;
    IF v_flow_slug IS NULL OR p_claim_qty < 1 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT * FROM pgflow.claim_tasks(v_flow_slug, p_claim_qty, p_claim_vt, p_worker_id);
END;
$$;
