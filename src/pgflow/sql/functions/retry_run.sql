-- Runs a failed or cancelled flow run again from scratch (additive to the 0.8.1 contract): a
-- new run of the same flow with the same input, whose retry_of names the original. The
-- original stays as it is, for the record; it may be retried more than once.
--
-- The original's row is locked first (the lock order of every run-changing function), so a
-- retry cannot interleave with a resume_run of the same run.
CREATE OR REPLACE FUNCTION pgflow.retry_run(run_id uuid)
RETURNS SETOF pgflow.runs
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_original pgflow.runs;
    v_new_run_id uuid := gen_random_uuid();
BEGIN
    SELECT * INTO v_original FROM pgflow.runs AS r WHERE r.run_id = retry_run.run_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', retry_run.run_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v_original.status NOT IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'run % is %: only a failed or cancelled run can be retried',
            retry_run.run_id, v_original.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- A new run exactly as start_flow makes one; the link commits with it.
    PERFORM pgflow.start_flow(v_original.flow_slug, v_original.input, v_new_run_id);
    UPDATE pgflow.runs AS r SET retry_of = v_original.run_id WHERE r.run_id = v_new_run_id;

    RETURN QUERY SELECT * FROM pgflow.runs AS r WHERE r.run_id = v_new_run_id;
END;
$$;
