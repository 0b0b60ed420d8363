-- The tasks of steps of one run that have just been started, each with its queue message:
-- p_task_counts[i] tasks for step p_step_slugs[i], steps in the order given (message ids are
-- handed out in that order, then by task index). One send per step, since each step has its
-- own start delay; the delay applies here only: retries re-use the message and wait by
-- visibility backoff alone. The send returns ids in array order, which is how each id is
-- matched to its task_index.
CREATE OR REPLACE FUNCTION pgflow._send_step_tasks(
    p_flow_slug text,
    p_run_id uuid,
    p_step_slugs text[],
    p_task_counts int[]
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_step record;
BEGIN
    FOR v_step IN
        SELECT st.step_slug, st.task_count, coalesce(s.opt_start_delay, 0) AS delay
        FROM unnest(p_step_slugs, p_task_counts) WITH ORDINALITY AS st(step_slug, task_count, position)
        JOIN pgflow.steps AS s ON s.flow_slug = p_flow_slug AND s.step_slug = st.step_slug
        ORDER BY st.position
    LOOP
        INSERT INTO pgflow.step_tasks (flow_slug, run_id, step_slug, task_index, message_id)
        SELECT p_flow_slug, p_run_id, v_step.step_slug, (m.ord - 1)::int, m.msg_id
        FROM unnest(pgflow._on_queue(
            p_flow_slug,
            'send',
            p_messages => ARRAY(
                SELECT jsonb_build_object(
                    'flow_slug', p_flow_slug,
                    'run_id', p_run_id,
                    'step_slug', v_step.step_slug,
                    'task_index', i
                )
                FROM generate_series(0, v_step.task_count - 1) AS i
                ORDER BY i
            ),
            p_seconds => v_step.delay
        )) WITH ORDINALITY AS m(msg_id, ord);
    END LOOP;
END;
$$;
