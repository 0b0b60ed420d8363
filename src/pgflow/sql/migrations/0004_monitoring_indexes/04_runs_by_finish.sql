-- history(): the most recently finished runs first, a range scan however many runs there are.
CREATE INDEX idx_runs_finished_at
    ON pgflow.runs ((coalesce(completed_at, failed_at)) DESC, run_id DESC)
    WHERE coalesce(completed_at, failed_at) IS NOT NULL;
