-- What cancel_run, retry_run and resume_run record on the run. All nullable or defaulted, so
-- 0.8.1 callers (and INSERTs written for 0.8.1) see no change.
--
-- retry_of is deliberately not a foreign key: pruning the original run must neither be
-- blocked by its retries nor erase where they came from.
ALTER TABLE pgflow.runs
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancel_reason text,
    ADD COLUMN retry_of uuid,
    ADD COLUMN resumed_count int NOT NULL DEFAULT 0,
    ADD COLUMN resumed_at timestamptz,
    ADD CONSTRAINT cancelled_at_only_when_cancelled
        CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    ADD CONSTRAINT cancelled_at_is_after_started_at
        CHECK (cancelled_at IS NULL OR cancelled_at >= started_at),
    ADD CONSTRAINT resumed_count_nonnegative CHECK (resumed_count >= 0);

-- The retries of a run (lineage, both directions).
CREATE INDEX idx_runs_retry_of ON pgflow.runs (retry_of) WHERE retry_of IS NOT NULL;
