-- Bookkeeping for recover_stalled_tasks: how often a task was put back in the queue because
-- the worker running it stopped reporting. Same names as the columns upstream pgflow added
-- for the same purpose (0.13.2), so tools that read them work on either core.
ALTER TABLE pgflow.step_tasks
    ADD COLUMN requeued_count int NOT NULL DEFAULT 0,
    ADD COLUMN last_requeued_at timestamptz,
    ADD CONSTRAINT requeued_count_nonnegative CHECK (requeued_count >= 0);
