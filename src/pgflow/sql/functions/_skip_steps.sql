-- Skips a step that will never run, with the reason given, and announces it (step:skipped).
-- With p_cascade every step downstream of it is skipped too (reason dependency_skipped): the
-- skip-cascade rule. Without, the step's dependents go on without it: it counts as settled
-- for them (remaining_deps), their input simply lacks it, and a map child, which would map
-- over its output, gets no tasks.
--
-- Messages of the skipped steps' queued or running tasks go to the archive; the task rows keep
-- their status (upstream's step_tasks statuses have no 'skipped'). Steps that are already
-- skipped (a diamond reaches a step twice) are neither changed nor counted again. Returns how
-- many steps were skipped. The caller holds the run's lock.
CREATE OR REPLACE FUNCTION pgflow._skip_steps(
    p_run_id uuid,
    p_step_slug text,
    p_skip_reason text,
    p_cascade boolean
)
RETURNS int
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_flow_slug text;
    v_targets text[];
    v_msg_ids bigint[];
    v_state record;
    v_count int := 0;
BEGIN
    SELECT r.flow_slug INTO v_flow_slug FROM pgflow.runs AS r WHERE r.run_id = p_run_id;

    WITH RECURSIVE downstream (step_slug) AS (
        SELECT p_step_slug
        UNION
        SELECT d.step_slug
        FROM pgflow.deps AS d
        JOIN downstream AS ds ON d.dep_slug = ds.step_slug
        WHERE p_cascade AND d.flow_slug = v_flow_slug
    )
    SELECT array_agg(ss.step_slug ORDER BY ss.step_slug) INTO v_targets
    FROM pgflow.step_states AS ss
    JOIN downstream AS ds ON ds.step_slug = ss.step_slug
    WHERE ss.run_id = p_run_id AND ss.status IN ('created', 'started');

    IF v_targets IS NULL THEN
        RETURN 0;
    END IF;

    SELECT array_agg(t.message_id ORDER BY t.message_id) INTO v_msg_ids
    FROM pgflow.step_tasks AS t
    WHERE t.run_id = p_run_id
      AND t.step_slug = ANY (v_targets)
      AND t.status IN ('queued', 'started')
      AND t.message_id IS NOT NULL;
    IF v_msg_ids IS NOT NULL THEN
        PERFORM pgmq.archive(v_flow_slug, v_msg_ids);
    END IF;

    UPDATE pgflow.step_states AS ss
    SET status = 'skipped',
        skip_reason = CASE WHEN ss.step_slug = p_step_slug THEN p_skip_reason
                           ELSE 'dependency_skipped' END,
        skipped_at = now(),
        remaining_tasks = NULL
    WHERE ss.run_id = p_run_id AND ss.step_slug = ANY (v_targets);

    -- In flow order, so a step's event precedes those of the steps it took with it.
    FOR v_state IN
        SELECT ss.step_slug, ss.skip_reason, ss.skipped_at, ss.error_message
        FROM pgflow.step_states AS ss
        JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
        WHERE ss.run_id = p_run_id AND ss.step_slug = ANY (v_targets)
        ORDER BY s.step_index
    LOOP
        PERFORM pgflow._emit_event(
            'step:' || v_state.step_slug || ':skipped',
            jsonb_build_object(
                'event_type', 'step:skipped',
                'run_id', p_run_id,
                'flow_slug', v_flow_slug,
                'step_slug', v_state.step_slug,
                'status', 'skipped',
                'skip_reason', v_state.skip_reason,
                'skipped_at', v_state.skipped_at
            ) || CASE WHEN v_state.skip_reason = 'handler_failed'
                      THEN jsonb_build_object('error_message', v_state.error_message)
                      ELSE '{}'::jsonb END,
            v_flow_slug
        );
        v_count := v_count + 1;
    END LOOP;

    IF NOT p_cascade THEN
        UPDATE pgflow.step_states AS child
        SET remaining_deps = child.remaining_deps - 1,
            initial_tasks = CASE WHEN cs.step_type = 'map' THEN 0 ELSE child.initial_tasks END
        FROM pgflow.deps AS d
        JOIN pgflow.steps AS cs ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
        WHERE d.flow_slug = v_flow_slug
          AND d.dep_slug = p_step_slug
          AND child.run_id = p_run_id
          AND child.step_slug = d.step_slug;
    END IF;

    UPDATE pgflow.runs AS r
    SET remaining_steps = r.remaining_steps - v_count
    WHERE r.run_id = p_run_id;

    RETURN v_count;
END;
$$;
