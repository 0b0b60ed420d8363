-- Step metrics over the runs started in a window: start_flow creates a run's step states in the
-- transaction that creates the run, so step_states.created_at is the run's started_at and the
-- window is a range on these indexes, without a join to runs. Per step and covering for
-- completed steps (durations: one index-only range per step, no sort to group them); per flow
-- for failed ones (failure reasons; error texts are too long to include in an index).
CREATE INDEX idx_step_states_completed_by_creation
    ON pgflow.step_states (flow_slug, step_slug, created_at) INCLUDE (started_at, completed_at)
    WHERE status = 'completed';
CREATE INDEX idx_step_states_failed_by_creation ON pgflow.step_states (flow_slug, created_at)
    WHERE status = 'failed';
