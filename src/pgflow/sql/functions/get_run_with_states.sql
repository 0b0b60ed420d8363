-- SECURITY DEFINER so browser roles granted EXECUTE can read a run without table grants.
CREATE OR REPLACE FUNCTION pgflow.get_run_with_states(run_id uuid)
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT jsonb_build_object(
        -- The 0.8.1 shape: the run-control columns of migration 0005 are left out (clients
        -- that know them read pgflow.runs).
        'run', to_jsonb(r)
            - ARRAY['cancelled_at', 'cancel_reason', 'retry_of', 'resumed_count', 'resumed_at'],
        'steps', coalesce((
            -- Likewise the skip columns of migration 0007, except on skipped steps, where
            -- they say why (0.8.1 has no skipped steps).
            SELECT jsonb_agg(
                to_jsonb(ss) - CASE WHEN ss.status = 'skipped' THEN ARRAY[]::text[]
                                    ELSE ARRAY['skip_reason', 'skipped_at'] END
                ORDER BY s.step_index
            )
            FROM pgflow.step_states AS ss
            JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
            WHERE ss.run_id = r.run_id
        ), '[]'::jsonb)
    )
    FROM pgflow.runs AS r
    WHERE r.run_id = get_run_with_states.run_id;
$$;
