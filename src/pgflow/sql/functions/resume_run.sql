-- Continues a failed or cancelled run where it stopped (additive to the 0.8.1 contract): the
-- same run, whose completed steps keep their state, outputs and task rows, while every other
-- step (the failed or cancelled ones and everything downstream of them, which cannot have
-- completed either) starts over from 'created' with fresh tasks, messages and attempt counts.
-- The run's counters are computed again from what is kept, and the steps that are ready are
-- started as start_flow would.
--
-- A worker still holding a task of the run from before (it ran while the run failed or was
-- cancelled) may report it after this. Its task row was replaced by a queued one with a new
-- message, so complete_task leaves it alone and fail_task only defers the new message by the
-- first retry delay (0.8.1's rule for a queued task); once the new attempt has started, the
-- late call is indistinguishable from that attempt's own report and settles the task, exactly
-- once, as for any redelivered task. Nothing is counted twice: counters move only when a
-- started task completes or fails.
--
-- Lock order as in complete_task and fail_task: the run row, then its step states, then tasks.
CREATE OR REPLACE FUNCTION pgflow.resume_run(run_id uuid)
RETURNS SETOF pgflow.runs
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run pgflow.runs;
    v_msg_ids bigint[];
    v_root_map_tasks int;
BEGIN
    SELECT * INTO v_run FROM pgflow.runs AS r WHERE r.run_id = resume_run.run_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', resume_run.run_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v_run.status NOT IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'run % is %: only a failed or cancelled run can be resumed',
            resume_run.run_id, v_run.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    PERFORM 1 FROM pgflow.step_states AS ss
    WHERE ss.run_id = resume_run.run_id
    ORDER BY ss.step_slug
    FOR UPDATE;

    -- The old tasks of the steps that start over give way to new ones. Their messages normally
    -- went to the archive when the run ended; any still queued must not be handed out again.
    SELECT array_agg(t.message_id ORDER BY t.message_id) INTO v_msg_ids
    FROM pgflow.step_tasks AS t
    JOIN pgflow.step_states AS ss ON ss.run_id = t.run_id AND ss.step_slug = t.step_slug
    WHERE t.run_id = resume_run.run_id AND ss.status <> 'completed' AND t.message_id IS NOT NULL;
    IF v_msg_ids IS NOT NULL THEN
        PERFORM pgmq.archive(v_run.flow_slug, v_msg_ids);
    END IF;

    DELETE FROM pgflow.step_tasks AS t
    USING pgflow.step_states AS ss
    WHERE t.run_id = resume_run.run_id
      AND ss.run_id = t.run_id
      AND ss.step_slug = t.step_slug
      AND ss.status <> 'completed';

    IF jsonb_typeof(v_run.input) = 'array' THEN
        v_root_map_tasks := jsonb_array_length(v_run.input);
    END IF;

    -- As start_flow sets them up, except that completed parents count as done: their children
    -- wait only for the others, and a map child of a completed parent knows its width already.
    -- The subqueries see the states as they were before this statement.
    UPDATE pgflow.step_states AS ss
    SET status = 'created',
        remaining_tasks = NULL,
        error_message = NULL,
        -- A skipped step starts over too: its condition is decided again (migration 0007).
        skip_reason = NULL,
        skipped_at = NULL,
        started_at = NULL,
        completed_at = NULL,
        failed_at = NULL,
        remaining_deps = (
            SELECT count(*)
            FROM pgflow.deps AS d
            JOIN pgflow.step_states AS ps ON ps.run_id = ss.run_id AND ps.step_slug = d.dep_slug
            WHERE d.flow_slug = ss.flow_slug AND d.step_slug = ss.step_slug
              AND ps.status <> 'completed'
        ),
        initial_tasks = CASE
            WHEN s.step_type <> 'map' THEN 1
            WHEN s.deps_count = 0 THEN v_root_map_tasks
            ELSE (
                -- A map step has exactly one dependency.
                SELECT CASE
                           WHEN ps.status <> 'completed' THEN NULL
                           WHEN pst.step_type = 'map' THEN ps.initial_tasks
                           ELSE (
                               SELECT CASE WHEN jsonb_typeof(pt.output) = 'array'
                                           THEN jsonb_array_length(pt.output) END
                               FROM pgflow.step_tasks AS pt
                               WHERE pt.run_id = ps.run_id
                                 AND pt.step_slug = ps.step_slug
                                 AND pt.task_index = 0
                           )
                       END
                FROM pgflow.deps AS d
                JOIN pgflow.step_states AS ps
                  ON ps.run_id = ss.run_id AND ps.step_slug = d.dep_slug
                JOIN pgflow.steps AS pst
                  ON pst.flow_slug = d.flow_slug AND pst.step_slug = d.dep_slug
                WHERE d.flow_slug = ss.flow_slug AND d.step_slug = ss.step_slug
            )
        END
    FROM pgflow.steps AS s
    WHERE ss.run_id = resume_run.run_id
      AND ss.status <> 'completed'
      AND s.flow_slug = ss.flow_slug
      AND s.step_slug = ss.step_slug;

    UPDATE pgflow.runs AS r
    SET status = 'started',
        output = NULL,
        failed_at = NULL,
        cancelled_at = NULL,
        cancel_reason = NULL,
        remaining_steps = (
            SELECT count(*) FROM pgflow.step_states AS ss
            WHERE ss.run_id = r.run_id AND ss.status <> 'completed'
        ),
        resumed_count = r.resumed_count + 1,
        resumed_at = now()
    WHERE r.run_id = resume_run.run_id
    RETURNING * INTO v_run;

    PERFORM pgflow._emit_event(
        'run:resumed',
        jsonb_build_object(
            'event_type', 'run:resumed',
            'run_id', v_run.run_id,
            'flow_slug', v_run.flow_slug,
            'status', 'started',
            'remaining_steps', v_run.remaining_steps,
            'resumed_count', v_run.resumed_count,
            'resumed_at', v_run.resumed_at
        ),
        v_run.flow_slug
    );

    -- Conditions of the steps that are ready again, and the taskless cascade, as in start_flow.
    PERFORM pgflow.cascade_resolve_conditions(resume_run.run_id);
    PERFORM pgflow.start_ready_steps(resume_run.run_id);
    PERFORM pgflow.maybe_complete_run(resume_run.run_id);

    RETURN QUERY SELECT * FROM pgflow.runs AS r WHERE r.run_id = resume_run.run_id;
END;
$$;
