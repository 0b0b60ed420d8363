-- For a scheduler serving some flows: its enabled schedules with when they are next due, in
-- seconds from now (zero or less: due now).
SELECT s.schedule_name,
       extract(epoch FROM s.next_occurrence_at - now())::float8 AS due_in
FROM pgflow.schedules AS s
WHERE s.enabled
  AND s.next_occurrence_at IS NOT NULL
  AND s.flow_slug = ANY (%(flow_slugs)s::text[])
ORDER BY s.next_occurrence_at
