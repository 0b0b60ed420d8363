-- The hours (UTC) in [since, until) in which the most runs started, busiest first
-- (date_bin: integer arithmetic per row, no time zone conversion).
SELECT date_bin('1 hour', r.started_at, timestamptz '2000-01-01 00:00:00+00') AS hour,
       count(*) AS runs
FROM pgflow.runs AS r
WHERE r.flow_slug = ANY (%(flows)s::text[])
  AND r.started_at >= %(since)s AND r.started_at < %(until)s
GROUP BY 1
ORDER BY runs DESC, hour DESC
LIMIT %(top)s
