CREATE TABLE pgflow.workers (
    worker_id uuid NOT NULL,
    queue_name text NOT NULL,
    function_name text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    -- Set by an operator to make a worker stop polling (zero-downtime deploys).
    deprecated_at timestamptz,
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workers_pkey PRIMARY KEY (worker_id)
);

CREATE INDEX idx_workers_queue_name ON pgflow.workers (queue_name);
-- Finding dead workers and pruning old ones by heartbeat age.
CREATE INDEX idx_workers_heartbeat ON pgflow.workers (last_heartbeat_at);
