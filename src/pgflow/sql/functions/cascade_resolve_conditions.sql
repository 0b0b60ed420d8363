-- Decides the steps that are ready (created, every dependency settled) but whose condition
-- does not hold, following their when_unmet: 'skip' skips the step alone (its dependents go on
-- without it), 'skip-cascade' skips it and everything downstream, 'fail' fails the step and
-- the run. Skipping can settle further steps, and so can taskless steps (maps over empty
-- arrays), so this alternates with cascade_complete_taskless_steps until nothing changes:
-- callers use it where 0.8.1 cascades taskless steps. For a flow without conditions it does
-- exactly that cascade.
--
-- Returns false when the run is not (or no longer) started, in particular when a condition
-- failed it. The caller holds the run's lock.
CREATE OR REPLACE FUNCTION pgflow.cascade_resolve_conditions(run_id uuid)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run pgflow.runs;
    v_step record;
    v_state pgflow.step_states;
    v_changed int;
    v_iterations int := 0;
    c_max_iterations constant int := 50;
BEGIN
    SELECT * INTO v_run FROM pgflow.runs AS r WHERE r.run_id = cascade_resolve_conditions.run_id;
    IF NOT FOUND OR v_run.status <> 'started' THEN
        RETURN false;
    END IF;

    LOOP
        v_iterations := v_iterations + 1;
        -- Every round settles at least one step, so a DAG cannot need more.
        IF v_iterations > c_max_iterations THEN
            RAISE EXCEPTION 'Condition resolution exceeded safety limit of % iterations',
                c_max_iterations;
        END IF;

        v_changed := 0;
        FOR v_step IN
            SELECT ss.step_slug, s.when_unmet
            FROM pgflow.step_states AS ss
            JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
            WHERE ss.run_id = v_run.run_id
              AND ss.status = 'created'
              AND ss.remaining_deps = 0
              AND (s.required_input_pattern IS NOT NULL OR s.forbidden_input_pattern IS NOT NULL)
            ORDER BY s.step_index
            FOR UPDATE OF ss
        LOOP
            -- A skip-cascade earlier in this round may have taken this step already (the
            -- loop's rows predate it).
            SELECT * INTO v_state FROM pgflow.step_states AS ss
            WHERE ss.run_id = v_run.run_id AND ss.step_slug = v_step.step_slug;
            CONTINUE WHEN v_state.status <> 'created'
                OR pgflow._condition_met(v_run.run_id, v_step.step_slug);

            IF v_step.when_unmet = 'fail' THEN
                -- While the tasks still have their status: the sweep takes queued and started.
                PERFORM pgflow._archive_run_messages(v_run.run_id);

                UPDATE pgflow.step_states AS ss
                SET status = 'failed', failed_at = now(), error_message = 'Condition not met'
                WHERE ss.run_id = v_run.run_id AND ss.step_slug = v_step.step_slug
                RETURNING * INTO v_state;

                UPDATE pgflow.runs AS r
                SET status = 'failed', failed_at = now()
                WHERE r.run_id = v_run.run_id
                RETURNING * INTO v_run;

                PERFORM pgflow._emit_event(
                    'step:' || v_state.step_slug || ':failed',
                    jsonb_build_object(
                        'event_type', 'step:failed',
                        'run_id', v_state.run_id,
                        'step_slug', v_state.step_slug,
                        'status', 'failed',
                        'error_message', v_state.error_message,
                        'failed_at', v_state.failed_at
                    ),
                    v_run.flow_slug
                );
                PERFORM pgflow._emit_event(
                    'run:failed',
                    jsonb_build_object(
                        'event_type', 'run:failed',
                        'run_id', v_run.run_id,
                        'flow_slug', v_run.flow_slug,
                        'status', 'failed',
                        'error_message', v_state.error_message,
                        'failed_at', v_run.failed_at
                    ),
                    v_run.flow_slug
                );
                RETURN false;
            END IF;

            v_changed := v_changed + pgflow._skip_steps(
                v_run.run_id, v_step.step_slug, 'condition_unmet', v_step.when_unmet = 'skip-cascade'
            );
        END LOOP;

        v_changed := v_changed + pgflow.cascade_complete_taskless_steps(v_run.run_id);
        EXIT WHEN v_changed = 0;
    END LOOP;

    RETURN true;
END;
$$;
