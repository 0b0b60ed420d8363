-- Listing runs newest first, with keyset pagination, overall and per flow: an index scan that
-- stays fast with millions of runs (the 0.8.1 indexes cover flow_slug and status only).
CREATE INDEX idx_runs_started_at ON pgflow.runs (started_at DESC, run_id DESC);
CREATE INDEX idx_runs_flow_started_at ON pgflow.runs (flow_slug, started_at DESC, run_id DESC);
