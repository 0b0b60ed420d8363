CREATE OR REPLACE FUNCTION pgflow.start_ready_steps(run_id uuid)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run_id uuid := start_ready_steps.run_id;
    v_flow_slug text;
    v_run_status text;
    v_step record;
    v_state pgflow.step_states;
    v_started_steps text[] := '{}';
    v_task_counts int[] := '{}';
BEGIN
    SELECT r.flow_slug, r.status INTO v_flow_slug, v_run_status
    FROM pgflow.runs AS r WHERE r.run_id = v_run_id;

    IF NOT FOUND OR v_run_status IN ('failed', 'cancelled') THEN
        RETURN;
    END IF;

    -- Defensive (0.8.1 behaviour): callers cascade taskless steps first, so this only fires
    -- when start_ready_steps is called on its own. Like upstream it touches no counters.
    FOR v_step IN
        SELECT ss.step_slug
        FROM pgflow.step_states AS ss
        WHERE ss.run_id = v_run_id
          AND ss.status = 'created'
          AND ss.remaining_deps = 0
          AND ss.initial_tasks = 0
        ORDER BY ss.step_slug
        FOR UPDATE
    LOOP
        UPDATE pgflow.step_states AS ss
        SET status = 'completed',
            started_at = now(),
            completed_at = now(),
            remaining_tasks = 0
        WHERE ss.run_id = v_run_id AND ss.step_slug = v_step.step_slug
        RETURNING * INTO v_state;

        PERFORM pgflow._emit_event(
            'step:' || v_state.step_slug || ':completed',
            jsonb_build_object(
                'event_type', 'step:completed',
                'run_id', v_state.run_id,
                'step_slug', v_state.step_slug,
                'status', 'completed',
                'output', '[]'::jsonb,
                'completed_at', v_state.completed_at
            ),
            v_flow_slug
        );
    END LOOP;

    FOR v_step IN
        SELECT ss.step_slug
        FROM pgflow.step_states AS ss
        WHERE ss.run_id = v_run_id
          AND ss.status = 'created'
          AND ss.remaining_deps = 0
          AND ss.initial_tasks > 0
        ORDER BY ss.step_slug
        FOR UPDATE
    LOOP
        UPDATE pgflow.step_states AS ss
        SET status = 'started',
            started_at = now(),
            remaining_tasks = ss.initial_tasks
        WHERE ss.run_id = v_run_id AND ss.step_slug = v_step.step_slug
        RETURNING * INTO v_state;

        PERFORM pgflow._emit_event(
            'step:' || v_state.step_slug || ':started',
            jsonb_build_object(
                'event_type', 'step:started',
                'run_id', v_state.run_id,
                'step_slug', v_state.step_slug,
                'status', 'started',
                'started_at', v_state.started_at,
                'remaining_tasks', v_state.remaining_tasks,
                'remaining_deps', v_state.remaining_deps
            ),
            v_flow_slug
        );

        v_started_steps := v_started_steps || v_state.step_slug;
        v_task_counts := v_task_counts || v_state.initial_tasks;
    END LOOP;

    IF cardinality(v_started_steps) > 0 THEN
        PERFORM pgflow._send_step_tasks(v_flow_slug, v_run_id, v_started_steps, v_task_counts);
    END IF;
END;
$$;
