-- Every schedule (optionally of some flows), by name, with the database's clock.
SELECT s.*, now() AS now
FROM pgflow.schedules AS s
WHERE %(flow_slugs)s::text[] IS NULL OR s.flow_slug = ANY (%(flow_slugs)s::text[])
ORDER BY s.schedule_name
