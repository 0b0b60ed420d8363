-- Remove a schedule and its occurrence records (runs it started are kept).
DELETE FROM pgflow.schedules AS s WHERE s.schedule_name = %(name)s RETURNING s.schedule_name
