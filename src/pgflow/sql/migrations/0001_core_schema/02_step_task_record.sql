-- Attribute order is part of the contract: callers that take the record whole read it by
-- position, and later upstream versions only append to it.
CREATE TYPE pgflow.step_task_record AS (
    flow_slug text,
    run_id uuid,
    step_slug text,
    input jsonb,
    msg_id bigint,
    task_index int
);
