-- Runs started in [since, until) of the given flows, in one pass of an index-only scan of
-- idx_runs_flow_started_at (one range per flow): how many per status, how many finished, and
-- the durations (seconds, start to completion) of the completed ones. Percentiles are exact
-- and interpolated (percentile_cont). date_part gives float8 seconds without numeric math.
SELECT count(*) AS total,
       count(*) FILTER (WHERE r.status = 'completed') AS completed,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'started') AS running,
       count(d.seconds) AS finished,
       avg(d.seconds) FILTER (WHERE r.status = 'completed') AS avg,
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY d.seconds)
           FILTER (WHERE r.status = 'completed') AS percentiles,
       max(d.seconds) FILTER (WHERE r.status = 'completed') AS max
FROM pgflow.runs AS r
CROSS JOIN LATERAL (
    SELECT date_part('epoch', coalesce(r.completed_at, r.failed_at) - r.started_at) AS seconds
) AS d
WHERE r.flow_slug = ANY (%(flows)s::text[])
  AND r.started_at >= %(since)s AND r.started_at < %(until)s
