-- The per-flow listing index of 0003, now also covering what the run metrics read (status and
-- finish times), so that metrics over a window of a flow's runs are index-only scans.
DROP INDEX pgflow.idx_runs_flow_started_at;
CREATE INDEX idx_runs_flow_started_at ON pgflow.runs (flow_slug, started_at DESC, run_id DESC)
    INCLUDE (status, completed_at, failed_at);
