-- Cron schedules run by the worker fleet (no pg_cron needed). The cron expression is
-- evaluated by pgflow-py (pgflow/_cron.py); the database keeps the state that makes firing
-- exactly-once across many workers: the occurrences already fired (next file) and, per
-- schedule, where firing has got to.
CREATE TABLE pgflow.schedules (
    schedule_name text NOT NULL,
    flow_slug text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    -- The input of every run the schedule starts.
    input jsonb NOT NULL DEFAULT 'null'::jsonb,
    enabled boolean NOT NULL DEFAULT true,
    -- At most this many occurrences are fired at once, the most recent ones: after downtime
    -- the older missed occurrences are skipped.
    max_catch_up int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Occurrences at or before this moment are never fired: set on creation, when the cron or
    -- time zone changes, and when the schedule is enabled again.
    active_since timestamptz NOT NULL DEFAULT now(),
    last_occurrence_at timestamptz,
    -- The next occurrence to fire (NULL while disabled); kept by the writers, so that
    -- schedulers find due schedules, and know how long to sleep, with one index scan.
    next_occurrence_at timestamptz,
    CONSTRAINT schedules_pkey PRIMARY KEY (schedule_name),
    CONSTRAINT schedules_flow_slug_fkey FOREIGN KEY (flow_slug)
        REFERENCES pgflow.flows (flow_slug) ON DELETE CASCADE,
    CONSTRAINT schedule_name_is_valid
        CHECK (schedule_name ~ '^[A-Za-z0-9_.:-]+$' AND length(schedule_name) <= 128),
    CONSTRAINT max_catch_up_is_positive CHECK (max_catch_up >= 1)
);

CREATE INDEX idx_schedules_flow_slug ON pgflow.schedules (flow_slug);
CREATE INDEX idx_schedules_due ON pgflow.schedules (next_occurrence_at) WHERE enabled;
