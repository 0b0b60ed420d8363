-- list_runs with a status filter, with or without a flow: a range scan in keyset order even when
-- the status is rare (the 0.8.1 idx_runs_status would need a sort, idx_runs_started_at a scan
-- of every run of other statuses).
CREATE INDEX idx_runs_status_started_at ON pgflow.runs (status, started_at DESC, run_id DESC);
CREATE INDEX idx_runs_flow_status_started_at
    ON pgflow.runs (flow_slug, status, started_at DESC, run_id DESC);
