CREATE OR REPLACE FUNCTION pgflow.fail_task(run_id uuid, step_slug text, task_index int, error_message text)
RETURNS SETOF pgflow.step_tasks
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run pgflow.runs;
    v_state pgflow.step_states;
    v_task pgflow.step_tasks;
    v_max_attempts int;
    v_base_delay int;
    v_when_exhausted text;
BEGIN
    -- Same lock order as complete_task: run -> step_state -> task.
    SELECT * INTO v_run FROM pgflow.runs AS r WHERE r.run_id = fail_task.run_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- The run already failed: record this failure, but never retry: nothing may run again.
    -- A cancelled run has no started task left (cancel_run marked them), so nothing changes.
    IF v_run.status IN ('failed', 'cancelled') THEN
        UPDATE pgflow.step_tasks AS t
        SET status = 'failed',
            failed_at = now(),
            error_message = fail_task.error_message
        WHERE t.run_id = fail_task.run_id
          AND t.step_slug = fail_task.step_slug
          AND t.task_index = fail_task.task_index
          AND t.status = 'started';

        SELECT * INTO v_task FROM pgflow.step_tasks AS t
        WHERE t.run_id = fail_task.run_id
          AND t.step_slug = fail_task.step_slug
          AND t.task_index = fail_task.task_index;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF v_task.message_id IS NOT NULL THEN
            PERFORM pgmq.archive(v_run.flow_slug, v_task.message_id);
        END IF;
        RETURN NEXT v_task;
        RETURN;
    END IF;

    SELECT * INTO v_state FROM pgflow.step_states AS ss
    WHERE ss.run_id = fail_task.run_id AND ss.step_slug = fail_task.step_slug
    FOR UPDATE;

    SELECT * INTO v_task FROM pgflow.step_tasks AS t
    WHERE t.run_id = fail_task.run_id
      AND t.step_slug = fail_task.step_slug
      AND t.task_index = fail_task.task_index
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- A late failure for a skipped step (a sibling task ran out of attempts under
    -- when_exhausted skip*): nothing may change, and its message must not come back.
    IF v_state.status = 'skipped' THEN
        PERFORM pgflow._archive_task_message(
            fail_task.run_id, fail_task.step_slug, fail_task.task_index
        );
        RETURN NEXT v_task;
        RETURN;
    END IF;

    SELECT coalesce(s.opt_max_attempts, f.opt_max_attempts), coalesce(s.opt_base_delay, f.opt_base_delay),
           s.when_exhausted
    INTO v_max_attempts, v_base_delay, v_when_exhausted
    FROM pgflow.steps AS s
    JOIN pgflow.flows AS f ON f.flow_slug = s.flow_slug
    WHERE s.flow_slug = v_run.flow_slug AND s.step_slug = fail_task.step_slug;

    -- Only a running task can fail; for any other the row stays as it is. Upstream 0.8.1 still
    -- pushes a queued task's message back by the backoff of its attempts so far (observed in
    -- differential tests), and callers can see that, so it is kept.
    IF v_task.status <> 'started' THEN
        IF v_task.status = 'queued' AND v_task.message_id IS NOT NULL THEN
            PERFORM pgmq.set_vt(
                v_run.flow_slug,
                v_task.message_id,
                pgflow.calculate_retry_delay(v_base_delay, v_task.attempts_count)
            );
        END IF;
        RETURN NEXT v_task;
        RETURN;
    END IF;

    -- attempts_count already counts the attempt that just failed (start_tasks increments it),
    -- so max_attempts 0 and 1 both allow a single attempt.
    IF v_task.attempts_count < v_max_attempts THEN
        UPDATE pgflow.step_tasks AS t
        SET status = 'queued',
            started_at = NULL,
            error_message = fail_task.error_message
        WHERE t.run_id = fail_task.run_id
          AND t.step_slug = fail_task.step_slug
          AND t.task_index = fail_task.task_index
        RETURNING * INTO v_task;

        -- The same message comes back after the backoff; nothing is re-sent, which is also
        -- why start_delay does not apply to retries.
        IF v_task.message_id IS NOT NULL THEN
            PERFORM pgmq.set_vt(
                v_run.flow_slug,
                v_task.message_id,
                pgflow.calculate_retry_delay(v_base_delay, v_task.attempts_count)
            );
        END IF;

        RETURN NEXT v_task;
        RETURN;
    END IF;

    -- Out of attempts with when_exhausted skip or skip-cascade: the task fails, its step is
    -- skipped (its error kept) and the run goes on without it.
    IF v_when_exhausted IN ('skip', 'skip-cascade') THEN
        UPDATE pgflow.step_states AS ss
        SET error_message = fail_task.error_message
        WHERE ss.run_id = fail_task.run_id AND ss.step_slug = fail_task.step_slug;

        -- While the task is still started, so its message is archived with its siblings'.
        PERFORM pgflow._skip_steps(
            fail_task.run_id, fail_task.step_slug, 'handler_failed',
            v_when_exhausted = 'skip-cascade'
        );

        UPDATE pgflow.step_tasks AS t
        SET status = 'failed',
            failed_at = now(),
            error_message = fail_task.error_message
        WHERE t.run_id = fail_task.run_id
          AND t.step_slug = fail_task.step_slug
          AND t.task_index = fail_task.task_index
        RETURNING * INTO v_task;

        PERFORM pgflow.cascade_resolve_conditions(fail_task.run_id);
        PERFORM pgflow.start_ready_steps(fail_task.run_id);
        PERFORM pgflow.maybe_complete_run(fail_task.run_id);

        RETURN NEXT v_task;
        RETURN;
    END IF;

    -- Out of attempts: the task, its step and the whole run fail.
    UPDATE pgflow.step_tasks AS t
    SET status = 'failed',
        failed_at = now(),
        error_message = fail_task.error_message
    WHERE t.run_id = fail_task.run_id
      AND t.step_slug = fail_task.step_slug
      AND t.task_index = fail_task.task_index
    RETURNING * INTO v_task;

    UPDATE pgflow.step_states AS ss
    SET status = 'failed',
        failed_at = now(),
        error_message = fail_task.error_message
    WHERE ss.run_id = fail_task.run_id AND ss.step_slug = fail_task.step_slug
    RETURNING * INTO v_state;

    UPDATE pgflow.runs AS r
    SET status = 'failed', failed_at = now()
    WHERE r.run_id = fail_task.run_id
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
            'error_message', fail_task.error_message,
            'failed_at', v_run.failed_at
        ),
        v_run.flow_slug
    );

    -- Siblings and parallel branches stop being handed out; their rows stay as they are.
    PERFORM pgflow._archive_run_messages(fail_task.run_id);
    IF v_task.message_id IS NOT NULL THEN
        PERFORM pgmq.archive(v_run.flow_slug, v_task.message_id);
    END IF;

    RETURN NEXT v_task;
END;
$$;
