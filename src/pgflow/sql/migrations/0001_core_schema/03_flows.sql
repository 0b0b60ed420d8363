CREATE TABLE pgflow.flows (
    flow_slug text NOT NULL,
    opt_max_attempts int NOT NULL DEFAULT 3,
    -- create_flow passes 5; the table default only serves direct inserts.
    opt_base_delay int NOT NULL DEFAULT 1,
    opt_timeout int NOT NULL DEFAULT 60,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flows_pkey PRIMARY KEY (flow_slug),
    CONSTRAINT slug_is_valid CHECK (pgflow.is_valid_slug(flow_slug)),
    CONSTRAINT opt_max_attempts_is_nonnegative CHECK (opt_max_attempts >= 0),
    CONSTRAINT opt_base_delay_is_nonnegative CHECK (opt_base_delay >= 0),
    CONSTRAINT opt_timeout_is_positive CHECK (opt_timeout > 0)
);
