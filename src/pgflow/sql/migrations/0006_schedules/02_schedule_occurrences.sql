-- One row per occurrence fired: the primary key is what makes an occurrence start at most
-- one run, however many schedulers race for it. pgflow.fire_schedule keeps the newest rows
-- of each schedule only.
CREATE TABLE pgflow.schedule_occurrences (
    schedule_name text NOT NULL,
    scheduled_for timestamptz NOT NULL,
    -- Not a foreign key: pruning runs must not be blocked by, nor erase, the record of firing.
    run_id uuid NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedule_occurrences_pkey PRIMARY KEY (schedule_name, scheduled_for),
    CONSTRAINT schedule_occurrences_schedule_name_fkey FOREIGN KEY (schedule_name)
        REFERENCES pgflow.schedules (schedule_name) ON DELETE CASCADE
);
