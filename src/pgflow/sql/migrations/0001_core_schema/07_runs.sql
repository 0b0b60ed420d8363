CREATE TABLE pgflow.runs (
    run_id uuid NOT NULL DEFAULT gen_random_uuid(),
    flow_slug text NOT NULL,
    status text NOT NULL DEFAULT 'started',
    input jsonb NOT NULL,
    output jsonb,
    remaining_steps int NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    failed_at timestamptz,
    CONSTRAINT runs_pkey PRIMARY KEY (run_id),
    CONSTRAINT runs_flow_slug_fkey FOREIGN KEY (flow_slug) REFERENCES pgflow.flows (flow_slug),
    CONSTRAINT runs_remaining_steps_check CHECK (remaining_steps >= 0),
    CONSTRAINT status_is_valid CHECK (status IN ('started', 'failed', 'completed')),
    CONSTRAINT completed_at_or_failed_at CHECK (NOT (completed_at IS NOT NULL AND failed_at IS NOT NULL)),
    CONSTRAINT completed_at_is_after_started_at CHECK (completed_at IS NULL OR completed_at >= started_at),
    CONSTRAINT failed_at_is_after_started_at CHECK (failed_at IS NULL OR failed_at >= started_at)
);

-- Also serves the runs_flow_slug_fkey check when a flow is deleted.
CREATE INDEX idx_runs_flow_slug ON pgflow.runs (flow_slug);
CREATE INDEX idx_runs_status ON pgflow.runs (status);
