-- Enable or disable a schedule; enabling restarts it from now (no catch-up of the time it
-- was disabled). The caller then sets next_occurrence_at (schedule_set_next).
UPDATE pgflow.schedules AS s
SET enabled = %(enabled)s,
    updated_at = now(),
    active_since = CASE WHEN %(enabled)s AND NOT s.enabled THEN now() ELSE s.active_since END
WHERE s.schedule_name = %(name)s
RETURNING s.*, now() AS now
