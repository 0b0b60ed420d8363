-- Whether a step's condition holds. The subject is the run input for a root step, and for a
-- dependent step the object {dep_slug: output} of its completed dependencies (skipped ones
-- are absent, as in the step's input). The required pattern must be contained in it (@>),
-- the forbidden one must not. A step without patterns always qualifies.
CREATE OR REPLACE FUNCTION pgflow._condition_met(p_run_id uuid, p_step_slug text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = ''
AS $$
DECLARE
    v_step pgflow.steps;
    v_subject jsonb;
BEGIN
    SELECT s.* INTO v_step
    FROM pgflow.runs AS r
    JOIN pgflow.steps AS s ON s.flow_slug = r.flow_slug AND s.step_slug = p_step_slug
    WHERE r.run_id = p_run_id;

    IF v_step.required_input_pattern IS NULL AND v_step.forbidden_input_pattern IS NULL THEN
        RETURN true;
    END IF;

    IF v_step.deps_count = 0 THEN
        SELECT r.input INTO v_subject FROM pgflow.runs AS r WHERE r.run_id = p_run_id;
    ELSE
        SELECT coalesce(jsonb_object_agg(d.dep_slug, pgflow._step_output(p_run_id, d.dep_slug)),
                        '{}'::jsonb)
        INTO v_subject
        FROM pgflow.deps AS d
        JOIN pgflow.step_states AS ds ON ds.run_id = p_run_id AND ds.step_slug = d.dep_slug
        WHERE d.flow_slug = v_step.flow_slug
          AND d.step_slug = p_step_slug
          AND ds.status = 'completed';
    END IF;

    RETURN (v_step.required_input_pattern IS NULL
            OR coalesce(v_subject @> v_step.required_input_pattern, false))
       AND (v_step.forbidden_input_pattern IS NULL
            OR NOT coalesce(v_subject @> v_step.forbidden_input_pattern, false));
END;
$$;
