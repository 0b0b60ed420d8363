-- SECURITY DEFINER so browser roles granted EXECUTE can read a run without table grants.
CREATE OR REPLACE FUNCTION pgflow.get_run_with_states(run_id uuid)
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT jsonb_build_object(
        'run', to_jsonb(r),
        'steps', coalesce((
            SELECT jsonb_agg(to_jsonb(ss) ORDER BY s.step_index)
            FROM pgflow.step_states AS ss
            JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
            WHERE ss.run_id = r.run_id
        ), '[]'::jsonb)
    )
    FROM pgflow.runs AS r
    WHERE r.run_id = get_run_with_states.run_id;
$$;
