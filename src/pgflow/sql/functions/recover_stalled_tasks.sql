-- Crash recovery without pg_cron. A task stays 'started' forever when the worker running it
-- dies: its message becomes visible again, but start_tasks only claims queued tasks. This puts
-- such tasks back in the queue once they have run longer than their step's effective timeout
-- plus a margin (a live worker would have failed them at the timeout), without counting the
-- lost attempt. After max_requeues recoveries the task is failed through fail_task instead,
-- so a handler that kills its worker every time cannot loop forever; fail_task's retry rules
-- then apply as for any failure.
--
-- Workers call this periodically. Only one call at a time does the work (the others return
-- at once), and every task is taken with the run -> step state -> task lock order that all
-- state changes use, so it cannot deadlock with completions.
CREATE OR REPLACE FUNCTION pgflow.recover_stalled_tasks(
    margin interval DEFAULT '30 seconds',
    max_requeues int DEFAULT 3
)
RETURNS TABLE (run_id uuid, step_slug text, task_index int, action text)
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_candidate record;
    v_task pgflow.step_tasks;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(8091040203364468) THEN
        RETURN;
    END IF;

    FOR v_candidate IN
        SELECT t.run_id, t.step_slug, t.task_index, t.flow_slug, t.message_id,
               coalesce(s.opt_timeout, f.opt_timeout) AS timeout
        FROM pgflow.step_tasks AS t
        JOIN pgflow.steps AS s ON s.flow_slug = t.flow_slug AND s.step_slug = t.step_slug
        JOIN pgflow.flows AS f ON f.flow_slug = t.flow_slug
        JOIN pgflow.runs AS r ON r.run_id = t.run_id
        JOIN pgflow.step_states AS ss ON ss.run_id = t.run_id AND ss.step_slug = t.step_slug
        -- idx_step_tasks_started serves this: started tasks by age. Tasks of a skipped step
        -- stay 'started' as they were (their messages are archived): nothing to recover.
        WHERE t.status = 'started'
          AND r.status = 'started'
          AND ss.status <> 'skipped'
          AND t.started_at < now() - pg_catalog.make_interval(secs => coalesce(s.opt_timeout, f.opt_timeout))
                                   - recover_stalled_tasks.margin
        ORDER BY t.run_id, t.step_slug, t.task_index
    LOOP
        PERFORM 1 FROM pgflow.runs AS r WHERE r.run_id = v_candidate.run_id AND r.status = 'started'
        FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        PERFORM 1 FROM pgflow.step_states AS ss
        WHERE ss.run_id = v_candidate.run_id AND ss.step_slug = v_candidate.step_slug
          AND ss.status <> 'skipped'
        FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        SELECT * INTO v_task FROM pgflow.step_tasks AS t
        WHERE t.run_id = v_candidate.run_id
          AND t.step_slug = v_candidate.step_slug
          AND t.task_index = v_candidate.task_index
        FOR UPDATE;
        -- It may have finished (or been recovered) between the scan and the locks.
        CONTINUE WHEN v_task.status <> 'started'
            OR v_task.started_at >= now() - pg_catalog.make_interval(secs => v_candidate.timeout)
                                          - recover_stalled_tasks.margin;

        run_id := v_candidate.run_id;
        step_slug := v_candidate.step_slug;
        task_index := v_candidate.task_index;
        IF v_task.requeued_count < recover_stalled_tasks.max_requeues THEN
            UPDATE pgflow.step_tasks AS t
            SET status = 'queued',
                started_at = NULL,
                attempts_count = greatest(t.attempts_count - 1, 0),
                requeued_count = t.requeued_count + 1,
                last_requeued_at = now()
            WHERE t.run_id = v_candidate.run_id
              AND t.step_slug = v_candidate.step_slug
              AND t.task_index = v_candidate.task_index;
            IF v_candidate.message_id IS NOT NULL THEN
                PERFORM pgflow.set_vt_batch(
                    v_candidate.flow_slug, ARRAY[v_candidate.message_id], ARRAY[0]
                );
            END IF;
            action := 'requeued';
        ELSE
            PERFORM pgflow.fail_task(
                v_candidate.run_id,
                v_candidate.step_slug,
                v_candidate.task_index,
                pg_catalog.format(
                    'Stalled: no result within the step timeout (%s s) plus %s; the worker '
                    'running it stopped reporting (already requeued %s times)',
                    v_candidate.timeout, recover_stalled_tasks.margin, v_task.requeued_count
                )
            );
            action := 'failed';
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
