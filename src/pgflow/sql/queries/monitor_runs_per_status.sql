-- Runs started in [since, until) of the given flows per status: read only when the window
-- has statuses beyond started, completed and failed (newer cores add some, e.g. cancelled).
SELECT r.status, count(*) AS runs
FROM pgflow.runs AS r
WHERE r.flow_slug = ANY (%(flows)s::text[])
  AND r.started_at >= %(since)s AND r.started_at < %(until)s
GROUP BY r.status
ORDER BY r.status
