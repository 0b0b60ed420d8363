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
    v_start_roots boolean;
    v_started_steps text[];
    v_task_counts int[];
    v_events text[];
    v_payloads jsonb[];
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

    -- Conditions of the root steps, or a root map over an empty array, have to be resolved
    -- (by the cascade, which may settle steps or fail the run) before any step starts. Without
    -- them the root steps start here: inserted started, rather than inserted and then updated
    -- by start_ready_steps (a second version of each row, its foreign keys checked again).
    v_start_roots := NOT (v_has_conditions OR coalesce(v_root_map_tasks = 0, false));

    -- A dependent map's width is unknown (NULL) until its parent completes.
    WITH inserted AS (
        INSERT INTO pgflow.step_states (
            flow_slug, run_id, step_slug, remaining_deps, initial_tasks,
            status, started_at, remaining_tasks
        )
        SELECT s.flow_slug,
               v_run.run_id,
               s.step_slug,
               s.deps_count,
               w.tasks,
               CASE WHEN w.starts THEN 'started' ELSE 'created' END,
               CASE WHEN w.starts THEN now() END,
               CASE WHEN w.starts THEN w.tasks END
        FROM pgflow.steps AS s
        CROSS JOIN LATERAL (
            SELECT CASE
                       WHEN s.step_type = 'map' AND s.deps_count = 0 THEN v_root_map_tasks
                       WHEN s.step_type = 'map' THEN NULL
                       ELSE 1
                   END AS tasks,
                   v_start_roots AND s.deps_count = 0 AS starts
        ) AS w
        WHERE s.flow_slug = v_run.flow_slug
        RETURNING step_slug, status, started_at, remaining_tasks, remaining_deps
    )
    -- In the order start_ready_steps announces and queues them: by step slug.
    SELECT array_agg(i.step_slug ORDER BY i.step_slug),
           array_agg(i.remaining_tasks ORDER BY i.step_slug),
           array_agg('step:' || i.step_slug || ':started' ORDER BY i.step_slug),
           array_agg(
               jsonb_build_object(
                   'event_type', 'step:started',
                   'run_id', v_run.run_id,
                   'step_slug', i.step_slug,
                   'status', 'started',
                   'started_at', i.started_at,
                   'remaining_tasks', i.remaining_tasks,
                   'remaining_deps', i.remaining_deps
               )
               ORDER BY i.step_slug
           )
    INTO v_started_steps, v_task_counts, v_events, v_payloads
    FROM inserted AS i
    WHERE i.status = 'started';

    -- run:started, then the steps started with it.
    PERFORM pgflow._emit_events(
        ARRAY['run:started'] || coalesce(v_events, '{}'),
        ARRAY[jsonb_build_object(
            'event_type', 'run:started',
            'run_id', v_run.run_id,
            'flow_slug', v_run.flow_slug,
            'input', v_run.input,
            'status', 'started',
            'remaining_steps', v_run.remaining_steps,
            'started_at', v_run.started_at
        )] || coalesce(v_payloads, '{}'),
        array_fill(v_run.flow_slug, ARRAY[1 + coalesce(cardinality(v_started_steps), 0)])
    );

    IF v_start_roots THEN
        IF v_started_steps IS NOT NULL THEN
            PERFORM pgflow._send_step_tasks(
                v_run.flow_slug, v_run.run_id, v_started_steps, v_task_counts
            );
        END IF;
        -- A flow without steps is over as soon as it starts.
        IF v_run.remaining_steps = 0 THEN
            PERFORM pgflow.maybe_complete_run(v_run.run_id);
        END IF;
    ELSE
        -- When a condition fails the run, start_ready_steps and maybe_complete_run find it
        -- failed and do nothing.
        PERFORM pgflow.cascade_resolve_conditions(v_run.run_id);
        PERFORM pgflow.start_ready_steps(v_run.run_id);
        PERFORM pgflow.maybe_complete_run(v_run.run_id);
    END IF;

    RETURN QUERY SELECT * FROM pgflow.runs AS r WHERE r.run_id = v_run.run_id;
END;
$$;
