CREATE TABLE pgflow.step_states (
    flow_slug text NOT NULL,
    run_id uuid NOT NULL,
    step_slug text NOT NULL,
    status text NOT NULL DEFAULT 'created',
    -- NULL until the step starts.
    remaining_tasks int,
    -- NULL for a map step until its parent's output (and so its fan-out width) is known.
    initial_tasks int,
    remaining_deps int NOT NULL DEFAULT 0,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    failed_at timestamptz,
    CONSTRAINT step_states_pkey PRIMARY KEY (run_id, step_slug),
    CONSTRAINT step_states_flow_slug_fkey FOREIGN KEY (flow_slug) REFERENCES pgflow.flows (flow_slug),
    CONSTRAINT step_states_run_id_fkey FOREIGN KEY (run_id) REFERENCES pgflow.runs (run_id),
    CONSTRAINT step_states_flow_slug_step_slug_fkey FOREIGN KEY (flow_slug, step_slug)
        REFERENCES pgflow.steps (flow_slug, step_slug),
    CONSTRAINT step_states_initial_tasks_check CHECK (initial_tasks >= 0),
    CONSTRAINT step_states_remaining_deps_check CHECK (remaining_deps >= 0),
    CONSTRAINT status_is_valid CHECK (status IN ('created', 'started', 'completed', 'failed')),
    CONSTRAINT status_and_remaining_tasks_match CHECK (status <> 'completed' OR remaining_tasks = 0),
    CONSTRAINT remaining_tasks_state_consistency CHECK (remaining_tasks IS NULL OR status <> 'created'),
    CONSTRAINT initial_tasks_known_when_started CHECK (status <> 'started' OR initial_tasks IS NOT NULL),
    CONSTRAINT completed_at_or_failed_at CHECK (NOT (completed_at IS NOT NULL AND failed_at IS NOT NULL)),
    CONSTRAINT started_at_is_after_created_at CHECK (started_at IS NULL OR started_at >= created_at),
    CONSTRAINT completed_at_is_after_started_at CHECK (completed_at IS NULL OR completed_at >= started_at),
    CONSTRAINT failed_at_is_after_started_at CHECK (failed_at IS NULL OR failed_at >= started_at)
);

-- Steps that may start or cascade-complete: start_ready_steps, cascade_complete_taskless_steps.
CREATE INDEX idx_step_states_ready ON pgflow.step_states (run_id, status, remaining_deps)
    WHERE status = 'created' AND remaining_deps = 0;
CREATE INDEX idx_step_states_failed ON pgflow.step_states (run_id, step_slug)
    WHERE status = 'failed';
-- Also serves the FKs to flows and steps when a flow or step is deleted.
CREATE INDEX idx_step_states_flow_slug ON pgflow.step_states (flow_slug);
CREATE INDEX idx_step_states_run_id ON pgflow.step_states (run_id);
