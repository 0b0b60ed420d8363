-- Every flow with its options and its steps (in order, with dependencies, options and
-- conditions). The condition columns are read through the row's JSON, so that a core without
-- them (0.8.1) reads as no condition with the defaults.
SELECT f.flow_slug, f.opt_max_attempts, f.opt_base_delay, f.opt_timeout, f.created_at,
       coalesce(jsonb_agg(jsonb_build_object(
           'step_slug', s.step_slug,
           'step_type', s.step_type,
           'step_index', s.step_index,
           'deps', coalesce((SELECT jsonb_agg(d.dep_slug ORDER BY d.dep_slug)
                             FROM pgflow.deps AS d
                             WHERE d.flow_slug = s.flow_slug AND d.step_slug = s.step_slug),
                            '[]'::jsonb),
           'max_attempts', s.opt_max_attempts,
           'base_delay', s.opt_base_delay,
           'timeout', s.opt_timeout,
           'start_delay', s.opt_start_delay,
           'when', to_jsonb(s) -> 'required_input_pattern',
           'unless', to_jsonb(s) -> 'forbidden_input_pattern',
           'when_unmet', coalesce(to_jsonb(s) ->> 'when_unmet', 'skip'),
           'when_exhausted', coalesce(to_jsonb(s) ->> 'when_exhausted', 'fail')
       ) ORDER BY s.step_index) FILTER (WHERE s.step_slug IS NOT NULL), '[]'::jsonb) AS steps
FROM pgflow.flows AS f
LEFT JOIN pgflow.steps AS s ON s.flow_slug = f.flow_slug
GROUP BY f.flow_slug
ORDER BY f.flow_slug
