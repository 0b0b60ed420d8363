-- What a step produced, as its dependents see it: a map step the outputs of its completed tasks
-- in task order ([] when it had none), a single step its task's output.
CREATE OR REPLACE FUNCTION pgflow._step_output(p_run_id uuid, p_step_slug text)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = ''
AS $$
    SELECT CASE
               WHEN s.step_type = 'map' THEN coalesce((
                   SELECT jsonb_agg(t.output ORDER BY t.task_index)
                   FROM pgflow.step_tasks AS t
                   WHERE t.run_id = p_run_id AND t.step_slug = p_step_slug AND t.status = 'completed'
               ), '[]'::jsonb)
               ELSE (
                   SELECT t.output
                   FROM pgflow.step_tasks AS t
                   WHERE t.run_id = p_run_id
                     AND t.step_slug = p_step_slug
                     AND t.task_index = 0
                     AND t.status = 'completed'
               )
           END
    FROM pgflow.runs AS r
    JOIN pgflow.steps AS s ON s.flow_slug = r.flow_slug AND s.step_slug = p_step_slug
    WHERE r.run_id = p_run_id;
$$;
