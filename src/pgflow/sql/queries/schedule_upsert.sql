-- Create or update a schedule. enabled NULL keeps the current setting (true for a new one),
-- so that workers registering the schedules declared in code do not undo an operator's
-- disable. Changing the cron, time zone or flow, or enabling again, restarts the schedule
-- from now: occurrences before that are not caught up.
INSERT INTO pgflow.schedules AS s
    (schedule_name, flow_slug, cron, timezone, input, enabled, max_catch_up)
VALUES (%(name)s, %(flow_slug)s, %(cron)s, %(timezone)s, %(input)s,
        coalesce(%(enabled)s, true), %(max_catch_up)s)
ON CONFLICT ON CONSTRAINT schedules_pkey DO UPDATE
SET flow_slug = excluded.flow_slug,
    cron = excluded.cron,
    timezone = excluded.timezone,
    input = excluded.input,
    enabled = coalesce(%(enabled)s, s.enabled),
    max_catch_up = excluded.max_catch_up,
    updated_at = now(),
    active_since = CASE
        WHEN (s.flow_slug, s.cron, s.timezone) IS DISTINCT FROM
             (excluded.flow_slug, excluded.cron, excluded.timezone)
          OR (coalesce(%(enabled)s, s.enabled) AND NOT s.enabled)
        THEN now()
        ELSE s.active_since
    END
RETURNING s.*, now() AS now
