-- A step that will never run is 'skipped', with the reason: condition_unmet (its condition),
-- handler_failed (out of attempts, when_exhausted skip*) or dependency_skipped (an upstream
-- step was skipped with skip-cascade). The 0.8.1 constraint names are kept (tools and tests
-- look them up by name); only what they allow grows. 'cancelled' is migration 0005's.
ALTER TABLE pgflow.step_states
    ADD COLUMN skip_reason text,
    ADD COLUMN skipped_at timestamptz,
    DROP CONSTRAINT status_is_valid,
    ADD CONSTRAINT status_is_valid
        CHECK (status IN ('created', 'started', 'completed', 'failed', 'skipped', 'cancelled')),
    DROP CONSTRAINT remaining_tasks_state_consistency,
    ADD CONSTRAINT remaining_tasks_state_consistency
        CHECK (remaining_tasks IS NULL OR status NOT IN ('created', 'skipped')),
    -- Upstream 0.14 replaces completed_at_or_failed_at with this one; ours keeps the 0.8.1
    -- name as well (it is implied by the new one), so nothing that names it breaks.
    ADD CONSTRAINT completed_at_or_failed_at_or_skipped_at
        CHECK (num_nonnulls(completed_at, failed_at, skipped_at) <= 1),
    ADD CONSTRAINT skip_reason_matches_status
        CHECK ((status = 'skipped') = (skip_reason IS NOT NULL)),
    ADD CONSTRAINT skipped_at_is_after_created_at
        CHECK (skipped_at IS NULL OR skipped_at >= created_at);

-- Skipped steps of a run: monitoring, and the inputs of steps downstream of them.
CREATE INDEX idx_step_states_skipped ON pgflow.step_states (run_id, step_slug)
    WHERE status = 'skipped';
