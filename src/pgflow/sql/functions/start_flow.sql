CREATE OR REPLACE FUNCTION pgflow.start_flow(flow_slug text, input jsonb, run_id uuid DEFAULT NULL)
RETURNS SETOF pgflow.runs
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run pgflow.runs;
    v_root_map_tasks int;
    v_has_root_map boolean;
    v_has_conditions boolean;
BEGIN
    SELECT coalesce(bool_or(s.step_type = 'map' AND s.deps_count = 0), false),
           coalesce(bool_or(s.required_input_pattern IS NOT NULL
                            OR s.forbidden_input_pattern IS NOT NULL), false)
    INTO v_has_root_map, v_has_conditions
    FROM pgflow.steps AS s
    WHERE s.flow_slug = start_flow.flow_slug;

    -- A root map fans out over the run input itself, so that input has to be an array.
    IF v_has_root_map THEN
        IF start_flow.input IS NULL THEN
            RAISE EXCEPTION 'Flow % has root map steps but input is NULL', start_flow.flow_slug;
        END IF;
        IF jsonb_typeof(start_flow.input) <> 'array' THEN
            RAISE EXCEPTION 'Flow % has root map steps but input is not an array (got %)',
                start_flow.flow_slug, jsonb_typeof(start_flow.input);
        END IF;
        -- Computed here, not in the INSERT below: the planner may fold jsonb_array_length on
        -- a constant input even inside a CASE branch that is never taken, and it raises on
        -- non-arrays.
        v_root_map_tasks := jsonb_array_length(start_flow.input);
    END IF;

    INSERT INTO pgflow.runs (run_id, flow_slug, input, remaining_steps)
    VALUES (
        coalesce(start_flow.run_id, gen_random_uuid()),
        start_flow.flow_slug,
        start_flow.input,
        (SELECT count(*) FROM pgflow.steps AS s WHERE s.flow_slug = start_flow.flow_slug)
    )
    RETURNING * INTO v_run;

    -- A dependent map's width is unknown (NULL) until its parent completes.
    INSERT INTO pgflow.step_states (flow_slug, run_id, step_slug, remaining_deps, initial_tasks)
    SELECT s.flow_slug,
           v_run.run_id,
           s.step_slug,
           s.deps_count,
           CASE
               WHEN s.step_type = 'map' AND s.deps_count = 0 THEN v_root_map_tasks
               WHEN s.step_type = 'map' THEN NULL
               ELSE 1
           END
    FROM pgflow.steps AS s
    WHERE s.flow_slug = v_run.flow_slug;

    PERFORM pgflow._emit_event(
        'run:started',
        jsonb_build_object(
            'event_type', 'run:started',
            'run_id', v_run.run_id,
            'flow_slug', v_run.flow_slug,
            'input', v_run.input,
            'status', 'started',
            'remaining_steps', v_run.remaining_steps,
            'started_at', v_run.started_at
        ),
        v_run.flow_slug
    );

    -- Conditions of the root steps (and the taskless cascade). When one fails the run, the
    -- next two calls find it failed and do nothing. Only conditions or a root map over an
    -- empty array give them work at the start; the run can only be over already then, or when
    -- the flow has no steps.
    IF v_has_conditions OR v_root_map_tasks = 0 THEN
        PERFORM pgflow.cascade_resolve_conditions(v_run.run_id);
    END IF;
    PERFORM pgflow.start_ready_steps(v_run.run_id);
    IF v_has_conditions OR v_root_map_tasks = 0 OR v_run.remaining_steps = 0 THEN
        PERFORM pgflow.maybe_complete_run(v_run.run_id);
    END IF;

    RETURN QUERY SELECT * FROM pgflow.runs AS r WHERE r.run_id = v_run.run_id;
END;
$$;
