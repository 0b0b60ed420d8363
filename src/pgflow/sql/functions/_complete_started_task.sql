-- complete_task's common case in as few statements as possible: a started task of a started
-- step, whose output needs no type check (a map step, an array, or no map step depends on it).
-- This is nearly every call a worker makes, so it sets the engine's throughput: compared with
-- the general path it locks and updates the step state in one statement, starts the
-- dependents it releases in the statement that releases them (start_ready_steps only after a
-- cascade), sends its events in one call, calls the cascade only when it can have work (a
-- released dependent that is taskless or conditional), and counts the step off its run in the
-- update that completes the run when it was the last.
--
-- Returns the completed task, or NULL having changed nothing, in which case complete_task
-- takes its general path. The caller holds the run's lock and has seen the run 'started'.
-- Locks follow complete_task's order: run (caller), step state, task.
CREATE OR REPLACE FUNCTION pgflow._complete_started_task(
    p_run_id uuid,
    p_flow_slug text,
    p_step_slug text,
    p_task_index int,
    p_output jsonb
)
RETURNS pgflow.step_tasks
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_task pgflow.step_tasks;
    v_step_type text;
    v_step_status text;
    v_initial_tasks int;
    v_completed_at timestamptz;
    v_step_output jsonb;
    v_child_tasks int;
    v_cascade boolean := false;
    v_started_steps text[];
    v_task_counts int[];
    v_events text[];
    v_payloads jsonb[];
BEGIN
    UPDATE pgflow.step_states AS ss
    SET remaining_tasks = ss.remaining_tasks - 1,
        status = CASE WHEN ss.remaining_tasks = 1 THEN 'completed' ELSE ss.status END,
        completed_at = CASE WHEN ss.remaining_tasks = 1 THEN now() ELSE ss.completed_at END
    FROM pgflow.steps AS s
    WHERE ss.run_id = p_run_id
      AND ss.step_slug = p_step_slug
      AND ss.status = 'started'
      AND s.flow_slug = p_flow_slug
      AND s.step_slug = p_step_slug
      -- The type check of a single step's output is the general path's.
      AND (s.step_type = 'map'
           OR jsonb_typeof(p_output) = 'array'
           OR NOT EXISTS (
               SELECT 1
               FROM pgflow.deps AS d
               JOIN pgflow.steps AS cs ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
               WHERE d.flow_slug = p_flow_slug AND d.dep_slug = p_step_slug AND cs.step_type = 'map'
           ))
      -- Only start_tasks changes a task without the run's lock, and never a started one.
      AND EXISTS (
          SELECT 1 FROM pgflow.step_tasks AS t
          WHERE t.run_id = p_run_id
            AND t.step_slug = p_step_slug
            AND t.task_index = p_task_index
            AND t.status = 'started'
      )
    RETURNING ss.status, ss.initial_tasks, ss.completed_at, s.step_type
    INTO v_step_status, v_initial_tasks, v_completed_at, v_step_type;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    UPDATE pgflow.step_tasks AS t
    SET status = 'completed', completed_at = now(), output = p_output
    WHERE t.run_id = p_run_id AND t.step_slug = p_step_slug AND t.task_index = p_task_index
    RETURNING * INTO v_task;

    IF v_step_status = 'completed' THEN
        IF v_step_type = 'map' THEN
            v_step_output := pgflow._step_output(p_run_id, p_step_slug);
            v_child_tasks := v_initial_tasks;
        ELSE
            v_step_output := p_output;
            IF jsonb_typeof(p_output) = 'array' THEN
                v_child_tasks := jsonb_array_length(p_output);
            END IF;
        END IF;

        -- Dependents: one dependency fewer; a map child takes its width from this step. A
        -- dependent left with no dependency starts in the same statement (what
        -- start_ready_steps would do next, without its queries and a second update of the
        -- row), unless a released dependent is taskless or conditional: then the cascade
        -- runs first, as it may settle steps or fail the run, and start_ready_steps after it.
        WITH children AS (
            SELECT d.step_slug,
                   cs.step_type = 'map' AS is_map,
                   cs.required_input_pattern IS NOT NULL
                       OR cs.forbidden_input_pattern IS NOT NULL AS conditional
            FROM pgflow.deps AS d
            JOIN pgflow.steps AS cs ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
            WHERE d.flow_slug = p_flow_slug AND d.dep_slug = p_step_slug
        ),
        planned AS (
            SELECT ch.step_slug, ch.conditional, cst.status,
                   cst.remaining_deps = 1 AS ready,
                   CASE WHEN ch.is_map THEN v_child_tasks ELSE cst.initial_tasks END AS tasks
            FROM children AS ch
            JOIN pgflow.step_states AS cst
              ON cst.run_id = p_run_id AND cst.step_slug = ch.step_slug
        ),
        decided AS (
            SELECT pl.*,
                   bool_or(pl.ready AND (pl.tasks = 0 OR pl.conditional)) OVER () AS cascades
            FROM planned AS pl
        ),
        released AS (
            UPDATE pgflow.step_states AS child
            SET remaining_deps = child.remaining_deps - 1,
                initial_tasks = dc.tasks,
                status = CASE WHEN dc.starts THEN 'started' ELSE child.status END,
                started_at = CASE WHEN dc.starts THEN now() ELSE child.started_at END,
                remaining_tasks = CASE WHEN dc.starts THEN dc.tasks ELSE child.remaining_tasks END
            FROM (
                SELECT de.*,
                       de.ready AND NOT de.cascades AND de.status = 'created' AND de.tasks > 0
                           AS starts
                FROM decided AS de
            ) AS dc
            WHERE child.run_id = p_run_id AND child.step_slug = dc.step_slug
            RETURNING child.step_slug, child.started_at, child.remaining_tasks,
                      child.remaining_deps, dc.starts, dc.cascades
        )
        SELECT coalesce(bool_or(r.cascades), false),
               coalesce(array_agg(r.step_slug ORDER BY r.step_slug) FILTER (WHERE r.starts), '{}'),
               coalesce(array_agg(r.remaining_tasks ORDER BY r.step_slug) FILTER (WHERE r.starts), '{}'),
               -- In the order start_ready_steps announces them: by step slug.
               array_agg('step:' || r.step_slug || ':started' ORDER BY r.step_slug)
                   FILTER (WHERE r.starts),
               array_agg(
                   jsonb_build_object(
                       'event_type', 'step:started',
                       'run_id', p_run_id,
                       'step_slug', r.step_slug,
                       'status', 'started',
                       'started_at', r.started_at,
                       'remaining_tasks', r.remaining_tasks,
                       'remaining_deps', r.remaining_deps
                   )
                   ORDER BY r.step_slug
               ) FILTER (WHERE r.starts)
        INTO v_cascade, v_started_steps, v_task_counts, v_events, v_payloads
        FROM released AS r;

        -- The step is counted off the run at the end, in the update that completes the run
        -- if it was its last (_complete_finished_runs); before the cascade, which counts on it.
        IF v_cascade THEN
            UPDATE pgflow.runs AS r
            SET remaining_steps = r.remaining_steps - 1
            WHERE r.run_id = p_run_id;
        END IF;

        -- step:completed first, then the steps it started, in one call.
        v_events := ARRAY['step:' || p_step_slug || ':completed'] || coalesce(v_events, '{}');
        v_payloads := ARRAY[jsonb_build_object(
            'event_type', 'step:completed',
            'run_id', p_run_id,
            'step_slug', p_step_slug,
            'status', 'completed',
            'output', v_step_output,
            'completed_at', v_completed_at
        )] || coalesce(v_payloads, '{}');
        PERFORM pgflow._emit_events(
            v_events, v_payloads, array_fill(p_flow_slug, ARRAY[cardinality(v_events)])
        );

        -- Steps are settled without tasks (maps over empty arrays) or by their conditions
        -- only when they are released, so nothing else can be waiting for the cascade.
        IF v_cascade THEN
            PERFORM pgflow.cascade_resolve_conditions(p_run_id);
        END IF;
    END IF;

    IF v_task.message_id IS NOT NULL THEN
        PERFORM pgflow._on_queue(p_flow_slug, 'archive', ARRAY[v_task.message_id]);
    END IF;

    IF v_step_status = 'completed' THEN
        IF v_cascade THEN
            PERFORM pgflow.start_ready_steps(p_run_id);
        ELSIF cardinality(v_started_steps) > 0 THEN
            PERFORM pgflow._send_step_tasks(p_flow_slug, p_run_id, v_started_steps, v_task_counts);
        END IF;
        IF v_cascade THEN
            PERFORM pgflow._complete_finished_runs(ARRAY[p_run_id], ARRAY[0]);
        ELSE
            -- A step before the last is counted off here (a function call costs more than
            -- the update); the last completes the run in the same write.
            UPDATE pgflow.runs AS r
            SET remaining_steps = r.remaining_steps - 1
            WHERE r.run_id = p_run_id AND r.remaining_steps > 1;
            IF NOT FOUND THEN
                PERFORM pgflow._complete_finished_runs(ARRAY[p_run_id], ARRAY[1]);
            END IF;
        END IF;
    END IF;

    RETURN v_task;
END;
$$;
