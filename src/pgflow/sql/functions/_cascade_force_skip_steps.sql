-- Upstream 0.14's name for skipping a step together with everything downstream of it.
CREATE OR REPLACE FUNCTION pgflow._cascade_force_skip_steps(run_id uuid, step_slug text, skip_reason text)
RETURNS int
LANGUAGE sql
VOLATILE
SET search_path = ''
AS $$
    SELECT pgflow._skip_steps(
        _cascade_force_skip_steps.run_id,
        _cascade_force_skip_steps.step_slug,
        _cascade_force_skip_steps.skip_reason,
        true
    );
$$;
