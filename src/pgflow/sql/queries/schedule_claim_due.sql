-- Take one due schedule for this transaction. SKIP LOCKED: a schedule another scheduler is
-- firing right now is left to it (it would fire the same occurrences, which their primary
-- key would refuse: wasted work, not double runs).
SELECT s.*, now() AS now
FROM pgflow.schedules AS s
WHERE s.schedule_name = %(name)s
  AND s.enabled
  AND s.next_occurrence_at <= now()
FOR UPDATE SKIP LOCKED
