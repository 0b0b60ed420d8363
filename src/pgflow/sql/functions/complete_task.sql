CREATE OR REPLACE FUNCTION pgflow.complete_task(run_id uuid, step_slug text, task_index int, output jsonb)
RETURNS SETOF pgflow.step_tasks
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run pgflow.runs;
    v_state pgflow.step_states;
    v_step pgflow.steps;
    v_task pgflow.step_tasks;
    v_task_found boolean;
    v_task_completed boolean := false;
    v_step_completed boolean := false;
    v_violating_child text;
    v_output_type text;
    v_child_tasks int;
    v_step_output jsonb;
BEGIN
    -- Lock order run -> step_state -> task, the same in every function that moves a run
    -- forward, so concurrent completions of one run queue up instead of deadlocking.
    SELECT * INTO v_run FROM pgflow.runs AS r WHERE r.run_id = complete_task.run_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- Nearly every call: a started task of a started step (see _complete_started_task).
    IF v_run.status = 'started' THEN
        v_task := pgflow._complete_started_task(
            complete_task.run_id,
            v_run.flow_slug,
            complete_task.step_slug,
            complete_task.task_index,
            complete_task.output
        );
        IF v_task.run_id IS NOT NULL THEN
            RETURN NEXT v_task;
            RETURN;
        END IF;
    END IF;

    -- A late result of a failed or cancelled run changes nothing.
    IF v_run.status IN ('failed', 'cancelled') THEN
        RETURN QUERY
        SELECT * FROM pgflow.step_tasks AS t
        WHERE t.run_id = complete_task.run_id
          AND t.step_slug = complete_task.step_slug
          AND t.task_index = complete_task.task_index;
        RETURN;
    END IF;

    SELECT * INTO v_state FROM pgflow.step_states AS ss
    WHERE ss.run_id = complete_task.run_id AND ss.step_slug = complete_task.step_slug
    FOR UPDATE;

    SELECT * INTO v_task FROM pgflow.step_tasks AS t
    WHERE t.run_id = complete_task.run_id
      AND t.step_slug = complete_task.step_slug
      AND t.task_index = complete_task.task_index
    FOR UPDATE;
    v_task_found := FOUND;

    -- A late result for a skipped step (a sibling task ran out of attempts under
    -- when_exhausted skip*): nothing may change, and its message must not come back.
    IF v_state.status = 'skipped' THEN
        PERFORM pgflow._archive_task_message(
            complete_task.run_id, complete_task.step_slug, complete_task.task_index
        );
        IF v_task_found THEN
            RETURN NEXT v_task;
        END IF;
        RETURN;
    END IF;

    SELECT * INTO v_step FROM pgflow.steps AS s
    WHERE s.flow_slug = v_run.flow_slug AND s.step_slug = complete_task.step_slug;

    -- A single step feeding a map step must produce an array: the map's width comes from it.
    -- Retrying cannot fix a handler's output type, so the run fails at once. Like upstream
    -- 0.8.1 (observed in differential tests) this does not look at the task at all: it also
    -- fires for a task that was never started, or an index that does not exist.
    IF v_step.step_type = 'single'
       AND (complete_task.output IS NULL OR jsonb_typeof(complete_task.output) <> 'array') THEN
        SELECT d.step_slug INTO v_violating_child
        FROM pgflow.deps AS d
        JOIN pgflow.steps AS cs ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
        JOIN pgflow.step_states AS css
          ON css.run_id = complete_task.run_id AND css.step_slug = d.step_slug
        WHERE d.flow_slug = v_run.flow_slug
          AND d.dep_slug = complete_task.step_slug
          AND cs.step_type = 'map'
          AND css.initial_tasks IS NULL
        -- The first child by slug is the one named, as upstream does (differential tests).
        ORDER BY d.step_slug
        LIMIT 1;

        IF v_violating_child IS NOT NULL THEN
            v_output_type := coalesce(jsonb_typeof(complete_task.output), 'null');

            -- Before the task leaves its status, so its own message goes with the rest.
            PERFORM pgflow._archive_run_messages(complete_task.run_id);

            UPDATE pgflow.runs AS r
            SET status = 'failed', failed_at = now()
            WHERE r.run_id = complete_task.run_id
            RETURNING * INTO v_run;

            UPDATE pgflow.step_states AS ss
            SET status = 'failed',
                failed_at = now(),
                error_message = '[TYPE_VIOLATION] Map step ' || v_violating_child
                    || ' expects array input but dependency ' || complete_task.step_slug
                    || ' produced ' || v_output_type
            WHERE ss.run_id = complete_task.run_id AND ss.step_slug = complete_task.step_slug
            RETURNING * INTO v_state;

            -- The offending output is kept for debugging.
            UPDATE pgflow.step_tasks AS t
            SET status = 'failed',
                failed_at = now(),
                output = complete_task.output,
                error_message = '[TYPE_VIOLATION] Produced ' || v_output_type || ' instead of array'
            WHERE t.run_id = complete_task.run_id
              AND t.step_slug = complete_task.step_slug
              AND t.task_index = complete_task.task_index;

            PERFORM pgflow._emit_event(
                'run:failed',
                jsonb_build_object(
                    'event_type', 'run:failed',
                    'run_id', v_run.run_id,
                    'flow_slug', v_run.flow_slug,
                    'status', 'failed',
                    'failed_at', v_run.failed_at
                ),
                v_run.flow_slug
            );
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

            -- 0.8.1 answers a type violation with an empty set.
            RETURN;
        END IF;
    END IF;

    -- Only a running task completes: a queued, completed or failed one is left as it is, so
    -- repeated or premature calls cannot corrupt the counters.
    IF v_task_found AND v_task.status = 'started' THEN
        UPDATE pgflow.step_tasks AS t
        SET status = 'completed',
            completed_at = now(),
            output = complete_task.output
        WHERE t.run_id = complete_task.run_id
          AND t.step_slug = complete_task.step_slug
          AND t.task_index = complete_task.task_index
        RETURNING * INTO v_task;
        v_task_completed := true;

        UPDATE pgflow.step_states AS ss
        SET remaining_tasks = ss.remaining_tasks - 1,
            status = CASE WHEN ss.remaining_tasks = 1 THEN 'completed' ELSE ss.status END,
            completed_at = CASE WHEN ss.remaining_tasks = 1 THEN now() ELSE ss.completed_at END
        WHERE ss.run_id = complete_task.run_id AND ss.step_slug = complete_task.step_slug
        RETURNING * INTO v_state;
        v_step_completed := v_state.status = 'completed';
    END IF;

    -- Upstream 0.8.1 announces step:completed whenever the step is completed at this point,
    -- so a repeated (or stray) call on a finished step announces it again, with the call's
    -- output for a single step (observed in differential tests). Clients treat it as a no-op.
    IF v_state.status = 'completed' THEN
        IF v_step.step_type = 'map' THEN
            v_step_output := pgflow._step_output(complete_task.run_id, complete_task.step_slug);
        ELSE
            v_step_output := complete_task.output;
        END IF;

        PERFORM pgflow._emit_event(
            'step:' || v_state.step_slug || ':completed',
            jsonb_build_object(
                'event_type', 'step:completed',
                'run_id', v_state.run_id,
                'step_slug', v_state.step_slug,
                'status', 'completed',
                'output', v_step_output,
                'completed_at', v_state.completed_at
            ),
            v_run.flow_slug
        );
    END IF;

    IF v_step_completed THEN
        -- Every task of the step has completed, so a map child fans out over this step's
        -- task count (map) or output array (single).
        IF v_step.step_type = 'map' THEN
            v_child_tasks := v_state.initial_tasks;
        -- Computed here, never inside the UPDATE below: jsonb_array_length raises on a
        -- non-array and a CASE branch is no guard against the planner folding it.
        ELSIF jsonb_typeof(complete_task.output) = 'array' THEN
            v_child_tasks := jsonb_array_length(complete_task.output);
        END IF;

        UPDATE pgflow.step_states AS child
        SET remaining_deps = child.remaining_deps - 1,
            initial_tasks = CASE WHEN cs.step_type = 'map' THEN v_child_tasks ELSE child.initial_tasks END
        FROM pgflow.deps AS d
        JOIN pgflow.steps AS cs ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
        WHERE d.flow_slug = v_run.flow_slug
          AND d.dep_slug = complete_task.step_slug
          AND child.run_id = complete_task.run_id
          AND child.step_slug = d.step_slug;

        UPDATE pgflow.runs AS r
        SET remaining_steps = r.remaining_steps - 1
        WHERE r.run_id = complete_task.run_id;

        -- Conditions of the steps this released, then the taskless cascade (when a condition
        -- fails the run, the calls below find it failed and do nothing).
        PERFORM pgflow.cascade_resolve_conditions(complete_task.run_id);
    END IF;

    IF v_task_completed AND v_task.message_id IS NOT NULL THEN
        PERFORM pgflow._on_queue(v_run.flow_slug, 'archive', ARRAY[v_task.message_id]);
    END IF;

    IF v_step_completed THEN
        PERFORM pgflow.start_ready_steps(complete_task.run_id);
        PERFORM pgflow.maybe_complete_run(complete_task.run_id);
    END IF;

    IF v_task_found THEN
        RETURN NEXT v_task;
    END IF;
END;
$$;
