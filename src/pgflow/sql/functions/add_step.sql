-- Upstream 0.14 appended the condition parameters; CREATE OR REPLACE cannot add parameters, and
-- the 0.8.1 overload beside the new one would make every positional call ambiguous, so it goes.
-- Calls written for 0.8.1 (positional or named) reach the new function unchanged.
DROP FUNCTION IF EXISTS pgflow.add_step(text, text, text[], int, int, int, int, text);

CREATE OR REPLACE FUNCTION pgflow.add_step(
    flow_slug text,
    step_slug text,
    deps_slugs text[] DEFAULT '{}',
    max_attempts int DEFAULT NULL,
    base_delay int DEFAULT NULL,
    timeout int DEFAULT NULL,
    start_delay int DEFAULT NULL,
    step_type text DEFAULT 'single',
    required_input_pattern jsonb DEFAULT NULL,
    forbidden_input_pattern jsonb DEFAULT NULL,
    when_unmet text DEFAULT 'skip',
    when_exhausted text DEFAULT 'fail'
)
RETURNS pgflow.steps
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_deps text[] := coalesce(add_step.deps_slugs, '{}');
    v_step pgflow.steps;
BEGIN
    -- A map step fans out over exactly one array; with two parents it would be ambiguous.
    IF add_step.step_type = 'map' AND cardinality(v_deps) > 1 THEN
        RAISE EXCEPTION 'Map step "%" can have at most one dependency, but % were provided: %',
            add_step.step_slug, cardinality(v_deps), array_to_string(v_deps, ', ');
    END IF;

    -- Serialises concurrent add_step calls of one flow so they cannot pick the same
    -- step_index; NO KEY keeps FK checks from runs/steps inserts unblocked. A missing flow
    -- locks nothing and surfaces as steps_flow_slug_fkey below.
    PERFORM 1 FROM pgflow.flows AS f WHERE f.flow_slug = add_step.flow_slug FOR NO KEY UPDATE;

    INSERT INTO pgflow.steps (
        flow_slug, step_slug, step_type, step_index, deps_count,
        opt_max_attempts, opt_base_delay, opt_timeout, opt_start_delay,
        required_input_pattern, forbidden_input_pattern, when_unmet, when_exhausted
    )
    VALUES (
        add_step.flow_slug,
        add_step.step_slug,
        add_step.step_type,
        (SELECT coalesce(max(s.step_index) + 1, 0) FROM pgflow.steps AS s
          WHERE s.flow_slug = add_step.flow_slug),
        cardinality(v_deps),
        add_step.max_attempts,
        add_step.base_delay,
        add_step.timeout,
        add_step.start_delay,
        add_step.required_input_pattern,
        add_step.forbidden_input_pattern,
        add_step.when_unmet,
        add_step.when_exhausted
    )
    -- Re-adding a step is a no-op so compiled flows can be applied repeatedly.
    ON CONFLICT (flow_slug, step_slug) DO NOTHING;

    INSERT INTO pgflow.deps (flow_slug, dep_slug, step_slug)
    SELECT add_step.flow_slug, d.dep_slug, add_step.step_slug
    FROM unnest(v_deps) AS d(dep_slug)
    ON CONFLICT DO NOTHING;

    SELECT * INTO v_step FROM pgflow.steps AS s
    WHERE s.flow_slug = add_step.flow_slug AND s.step_slug = add_step.step_slug;
    RETURN v_step;
END;
$$;
