-- history() lists cancelled runs too (migration 0005 added cancelled_at): the finish time of a
-- run is when it completed, failed or was cancelled. Replaces the index of migration 0004.
DROP INDEX pgflow.idx_runs_finished_at;
CREATE INDEX idx_runs_finished_at
    ON pgflow.runs ((coalesce(completed_at, failed_at, cancelled_at)) DESC, run_id DESC)
    WHERE coalesce(completed_at, failed_at, cancelled_at) IS NOT NULL;
