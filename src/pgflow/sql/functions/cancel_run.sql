-- Stops a started run for good (additive to the 0.8.1 contract): the run, its unfinished steps
-- and its queued or running tasks become 'cancelled', their messages go to the archive, and
-- run:cancelled is announced (after a step:cancelled per step) so that workers can tell the
-- handlers still running. Completed steps and tasks keep their outputs.
--
-- Locks the run row first, like complete_task and fail_task: a completion in progress finishes
-- before the cancellation looks at the run (and may have finished it, which is then an error),
-- and a completion that comes later finds the run cancelled and changes nothing.
CREATE OR REPLACE FUNCTION pgflow.cancel_run(run_id uuid, reason text DEFAULT NULL)
RETURNS SETOF pgflow.runs
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run pgflow.runs;
    v_step record;
BEGIN
    SELECT * INTO v_run FROM pgflow.runs AS r WHERE r.run_id = cancel_run.run_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', cancel_run.run_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v_run.status <> 'started' THEN
        RAISE EXCEPTION 'run % is already %: only a started run can be cancelled',
            cancel_run.run_id, v_run.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    PERFORM 1 FROM pgflow.step_states AS ss
    WHERE ss.run_id = cancel_run.run_id
    ORDER BY ss.step_slug
    FOR UPDATE;

    -- While the tasks still have their status: the sweep takes queued and started ones.
    PERFORM pgflow._archive_run_messages(cancel_run.run_id);

    UPDATE pgflow.step_states AS ss
    SET status = 'cancelled'
    WHERE ss.run_id = cancel_run.run_id AND ss.status IN ('created', 'started');

    UPDATE pgflow.step_tasks AS t
    SET status = 'cancelled'
    WHERE t.run_id = cancel_run.run_id AND t.status IN ('queued', 'started');

    UPDATE pgflow.runs AS r
    SET status = 'cancelled', cancelled_at = now(), cancel_reason = cancel_run.reason
    WHERE r.run_id = cancel_run.run_id
    RETURNING * INTO v_run;

    -- A started run has no cancelled step before this call, so these are exactly the ones
    -- cancelled now.
    FOR v_step IN
        SELECT ss.step_slug
        FROM pgflow.step_states AS ss
        JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
        WHERE ss.run_id = cancel_run.run_id AND ss.status = 'cancelled'
        ORDER BY s.step_index
    LOOP
        PERFORM pgflow._emit_event(
            'step:' || v_step.step_slug || ':cancelled',
            jsonb_build_object(
                'event_type', 'step:cancelled',
                'run_id', v_run.run_id,
                'step_slug', v_step.step_slug,
                'status', 'cancelled',
                'cancelled_at', v_run.cancelled_at
            ),
            v_run.flow_slug
        );
    END LOOP;
    PERFORM pgflow._emit_event(
        'run:cancelled',
        jsonb_build_object(
            'event_type', 'run:cancelled',
            'run_id', v_run.run_id,
            'flow_slug', v_run.flow_slug,
            'status', 'cancelled',
            'cancel_reason', v_run.cancel_reason,
            'cancelled_at', v_run.cancelled_at
        ),
        v_run.flow_slug
    );

    RETURN NEXT v_run;
END;
$$;
