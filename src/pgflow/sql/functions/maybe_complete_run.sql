CREATE OR REPLACE FUNCTION pgflow.maybe_complete_run(run_id uuid)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_run pgflow.runs;
BEGIN
    -- The run's output is what its leaf steps (those nothing depends on) produced.
    UPDATE pgflow.runs AS r
    SET status = 'completed',
        completed_at = now(),
        output = (
            SELECT jsonb_object_agg(
                ss.step_slug,
                CASE
                    WHEN s.step_type = 'map' THEN coalesce((
                        SELECT jsonb_agg(t.output ORDER BY t.task_index)
                        FROM pgflow.step_tasks AS t
                        WHERE t.run_id = ss.run_id
                          AND t.step_slug = ss.step_slug
                          AND t.status = 'completed'
                    ), '[]'::jsonb)
                    ELSE (
                        SELECT t.output
                        FROM pgflow.step_tasks AS t
                        WHERE t.run_id = ss.run_id
                          AND t.step_slug = ss.step_slug
                          AND t.task_index = 0
                          AND t.status = 'completed'
                    )
                END
            )
            FROM pgflow.step_states AS ss
            JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
            WHERE ss.run_id = r.run_id
              AND ss.status = 'completed'
              AND NOT EXISTS (
                  SELECT 1 FROM pgflow.deps AS d
                  WHERE d.flow_slug = ss.flow_slug AND d.dep_slug = ss.step_slug
              )
        )
    WHERE r.run_id = maybe_complete_run.run_id
      AND r.remaining_steps = 0
      -- 'started' rather than "not completed": a failed run must never turn completed.
      AND r.status = 'started'
    RETURNING * INTO v_run;

    IF FOUND THEN
        PERFORM pgflow._emit_event(
            'run:completed',
            jsonb_build_object(
                'event_type', 'run:completed',
                'run_id', v_run.run_id,
                'flow_slug', v_run.flow_slug,
                'status', 'completed',
                'output', v_run.output,
                'completed_at', v_run.completed_at
            ),
            v_run.flow_slug
        );
    END IF;
END;
$$;
