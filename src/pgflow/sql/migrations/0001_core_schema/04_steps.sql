CREATE TABLE pgflow.steps (
    flow_slug text NOT NULL,
    step_slug text NOT NULL,
    step_type text NOT NULL DEFAULT 'single',
    step_index int NOT NULL DEFAULT 0,
    deps_count int NOT NULL DEFAULT 0,
    -- NULL options inherit the flow's value.
    opt_max_attempts int,
    opt_base_delay int,
    opt_timeout int,
    opt_start_delay int,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT steps_pkey PRIMARY KEY (flow_slug, step_slug),
    CONSTRAINT steps_flow_slug_step_index_key UNIQUE (flow_slug, step_index),
    CONSTRAINT steps_flow_slug_fkey FOREIGN KEY (flow_slug) REFERENCES pgflow.flows (flow_slug),
    CONSTRAINT steps_step_slug_check CHECK (pgflow.is_valid_slug(step_slug)),
    CONSTRAINT steps_step_type_check CHECK (step_type IN ('single', 'map')),
    CONSTRAINT steps_deps_count_check CHECK (deps_count >= 0),
    CONSTRAINT opt_max_attempts_is_nonnegative CHECK (opt_max_attempts IS NULL OR opt_max_attempts >= 0),
    CONSTRAINT opt_base_delay_is_nonnegative CHECK (opt_base_delay IS NULL OR opt_base_delay >= 0),
    CONSTRAINT opt_timeout_is_positive CHECK (opt_timeout IS NULL OR opt_timeout > 0),
    CONSTRAINT opt_start_delay_is_nonnegative CHECK (opt_start_delay IS NULL OR opt_start_delay >= 0)
);
