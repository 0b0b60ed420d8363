-- Cancellation is a terminal state of its own for runs, their steps and their tasks. The 0.8.1
-- check constraints keep their names (tools and tests look them up by name); only the list of
-- allowed values grows.
ALTER TABLE pgflow.runs
    DROP CONSTRAINT status_is_valid,
    ADD CONSTRAINT status_is_valid CHECK (status IN ('started', 'failed', 'completed', 'cancelled'));

ALTER TABLE pgflow.step_states
    DROP CONSTRAINT status_is_valid,
    ADD CONSTRAINT status_is_valid
        CHECK (status IN ('created', 'started', 'completed', 'failed', 'cancelled'));

ALTER TABLE pgflow.step_tasks
    DROP CONSTRAINT valid_status,
    ADD CONSTRAINT valid_status
        CHECK (status IN ('queued', 'started', 'completed', 'failed', 'cancelled'));
