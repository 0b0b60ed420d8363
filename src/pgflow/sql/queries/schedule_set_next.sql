-- Record when a schedule is next due (NULL while disabled).
UPDATE pgflow.schedules AS s
SET next_occurrence_at = %(next_occurrence_at)s
WHERE s.schedule_name = %(name)s
RETURNING s.*, now() AS now
