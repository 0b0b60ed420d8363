-- Seconds until the next message of the queue becomes visible (a retry backoff, a start
-- delay), so that an idle worker sleeps exactly that long instead of polling blindly.
SELECT extract(epoch FROM (min(vt) - clock_timestamp()))::float8 AS seconds
FROM pgmq.{table}
