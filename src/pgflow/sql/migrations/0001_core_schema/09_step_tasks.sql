CREATE TABLE pgflow.step_tasks (
    flow_slug text NOT NULL,
    run_id uuid NOT NULL,
    step_slug text NOT NULL,
    -- The pgmq message in the queue named after the flow.
    message_id bigint,
    task_index int NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'queued',
    attempts_count int NOT NULL DEFAULT 0,
    error_message text,
    output jsonb,
    queued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    failed_at timestamptz,
    last_worker_id uuid,
    CONSTRAINT step_tasks_pkey PRIMARY KEY (run_id, step_slug, task_index),
    CONSTRAINT step_tasks_flow_slug_fkey FOREIGN KEY (flow_slug) REFERENCES pgflow.flows (flow_slug),
    CONSTRAINT step_tasks_run_id_fkey FOREIGN KEY (run_id) REFERENCES pgflow.runs (run_id),
    CONSTRAINT step_tasks_run_id_step_slug_fkey FOREIGN KEY (run_id, step_slug)
        REFERENCES pgflow.step_states (run_id, step_slug),
    -- Pruning dead workers must not lose task history.
    CONSTRAINT step_tasks_last_worker_id_fkey FOREIGN KEY (last_worker_id)
        REFERENCES pgflow.workers (worker_id) ON DELETE SET NULL,
    CONSTRAINT valid_status CHECK (status IN ('queued', 'started', 'completed', 'failed')),
    -- A failed task keeps the output that caused a type violation.
    CONSTRAINT output_valid_only_for_completed CHECK (output IS NULL OR status IN ('completed', 'failed')),
    CONSTRAINT attempts_count_nonnegative CHECK (attempts_count >= 0),
    CONSTRAINT completed_at_or_failed_at CHECK (NOT (completed_at IS NOT NULL AND failed_at IS NOT NULL)),
    CONSTRAINT completed_at_is_after_queued_at CHECK (completed_at IS NULL OR completed_at >= queued_at),
    CONSTRAINT failed_at_is_after_queued_at CHECK (failed_at IS NULL OR failed_at >= queued_at),
    CONSTRAINT started_at_is_after_queued_at CHECK (started_at IS NULL OR started_at >= queued_at),
    CONSTRAINT completed_at_is_after_started_at CHECK (completed_at IS NULL OR completed_at >= started_at),
    CONSTRAINT failed_at_is_after_started_at CHECK (failed_at IS NULL OR failed_at >= started_at)
);

CREATE INDEX idx_step_tasks_message_id ON pgflow.step_tasks (message_id);
CREATE INDEX idx_step_tasks_queued ON pgflow.step_tasks (run_id, step_slug) WHERE status = 'queued';
CREATE INDEX idx_step_tasks_completed ON pgflow.step_tasks (run_id, step_slug) WHERE status = 'completed';
CREATE INDEX idx_step_tasks_failed ON pgflow.step_tasks (run_id, step_slug) WHERE status = 'failed';
-- Also serves the FK to flows when a flow is deleted.
CREATE INDEX idx_step_tasks_flow_run_step ON pgflow.step_tasks (flow_slug, run_id, step_slug);
-- Stalled-task detection scans started tasks by age.
CREATE INDEX idx_step_tasks_started ON pgflow.step_tasks (started_at) WHERE status = 'started';
-- start_tasks: claiming queued tasks by the message ids a worker just read.
CREATE INDEX idx_step_tasks_queued_msg ON pgflow.step_tasks (message_id) WHERE status = 'queued';
-- ON DELETE SET NULL from workers must not scan the whole table.
CREATE INDEX idx_step_tasks_last_worker ON pgflow.step_tasks (last_worker_id);
-- No index beyond the contract's is needed: complete_task, fail_task, a failed run's message
-- sweep and input assembly all look tasks up by a prefix of step_tasks_pkey
-- (run_id, step_slug, task_index).
