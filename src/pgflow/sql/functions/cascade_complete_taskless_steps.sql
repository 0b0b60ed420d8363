-- Completes steps that have nothing to do (maps over empty arrays) and everything that becomes
-- taskless because of them, level by level, so an empty array flows down a map chain in one
-- transaction. Deliberately without SET search_path (as upstream); every name is qualified.
CREATE OR REPLACE FUNCTION pgflow.cascade_complete_taskless_steps(run_id uuid)
RETURNS int
LANGUAGE plpgsql
VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_run_id uuid := cascade_complete_taskless_steps.run_id;
    v_flow_slug text;
    v_step record;
    v_level_count int;
    v_total int := 0;
    v_iterations int := 0;
    c_max_iterations constant int := 50;
BEGIN
    SELECT r.flow_slug INTO v_flow_slug FROM pgflow.runs AS r WHERE r.run_id = v_run_id;

    LOOP
        v_iterations := v_iterations + 1;
        -- A DAG cannot need more levels than this; hitting it means corrupted counters.
        IF v_iterations > c_max_iterations THEN
            RAISE EXCEPTION 'Cascade loop exceeded safety limit of % iterations', c_max_iterations;
        END IF;

        v_level_count := 0;
        -- The cursor's snapshot predates this level's updates, so children released here wait
        -- for the next level and their events follow their parents'.
        FOR v_step IN
            SELECT ss.step_slug
            FROM pgflow.step_states AS ss
            JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
            WHERE ss.run_id = v_run_id
              AND ss.status = 'created'
              AND ss.remaining_deps = 0
              AND ss.initial_tasks = 0
              -- A step whose condition fails is cascade_resolve_conditions' to skip (or fail).
              AND (s.required_input_pattern IS NULL AND s.forbidden_input_pattern IS NULL
                   OR pgflow._condition_met(v_run_id, ss.step_slug))
            ORDER BY s.step_index
            FOR UPDATE OF ss
        LOOP
            UPDATE pgflow.step_states AS ss
            SET status = 'completed',
                started_at = now(),
                completed_at = now(),
                remaining_tasks = 0
            WHERE ss.run_id = v_run_id AND ss.step_slug = v_step.step_slug;

            PERFORM pgflow._emit_event(
                'step:' || v_step.step_slug || ':completed',
                jsonb_build_object(
                    'event_type', 'step:completed',
                    'run_id', v_run_id,
                    'step_slug', v_step.step_slug,
                    'status', 'completed',
                    'started_at', now(),
                    'completed_at', now(),
                    'remaining_tasks', 0,
                    'remaining_deps', 0,
                    'output', '[]'::jsonb
                ),
                v_flow_slug
            );

            -- Only map steps can be taskless, so a map child of one inherits the empty array.
            UPDATE pgflow.step_states AS child
            SET remaining_deps = child.remaining_deps - 1,
                initial_tasks = CASE WHEN cs.step_type = 'map' THEN 0 ELSE child.initial_tasks END
            FROM pgflow.deps AS d
            JOIN pgflow.steps AS cs ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
            WHERE d.flow_slug = v_flow_slug
              AND d.dep_slug = v_step.step_slug
              AND child.run_id = v_run_id
              AND child.step_slug = d.step_slug;

            v_level_count := v_level_count + 1;
        END LOOP;

        EXIT WHEN v_level_count = 0;

        UPDATE pgflow.runs AS r
        SET remaining_steps = r.remaining_steps - v_level_count
        WHERE r.run_id = v_run_id;

        v_total := v_total + v_level_count;
    END LOOP;

    RETURN v_total;
END;
$$;
