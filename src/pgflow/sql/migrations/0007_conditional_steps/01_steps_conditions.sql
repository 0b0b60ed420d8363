-- Conditional steps (upstream 0.14's objects, under its names). A step may carry a JSON
-- pattern its input must contain (required) and one it must not contain (forbidden); what
-- happens when the condition is unmet, and when the handler runs out of attempts, is chosen
-- per step. The defaults leave a step without patterns exactly as it was in 0.8.1:
-- when_unmet only applies to a step with a pattern, and when_exhausted 'fail' is 0.8.1's rule.
ALTER TABLE pgflow.steps
    ADD COLUMN required_input_pattern jsonb,
    ADD COLUMN forbidden_input_pattern jsonb,
    ADD COLUMN when_unmet text NOT NULL DEFAULT 'skip',
    ADD COLUMN when_exhausted text NOT NULL DEFAULT 'fail',
    -- Containment (@>) of a non-object pattern is not what anyone means by a condition.
    ADD CONSTRAINT required_input_pattern_is_object
        CHECK (required_input_pattern IS NULL OR jsonb_typeof(required_input_pattern) = 'object'),
    ADD CONSTRAINT forbidden_input_pattern_is_object
        CHECK (forbidden_input_pattern IS NULL OR jsonb_typeof(forbidden_input_pattern) = 'object'),
    ADD CONSTRAINT when_unmet_is_valid CHECK (when_unmet IN ('fail', 'skip', 'skip-cascade')),
    ADD CONSTRAINT when_exhausted_is_valid
        CHECK (when_exhausted IN ('fail', 'skip', 'skip-cascade'));
