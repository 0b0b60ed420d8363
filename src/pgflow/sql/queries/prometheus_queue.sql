-- One flow's queue: its messages, those visible now, and the age of the oldest (seconds).
-- {flow_slug} (a literal) and {queue_table} (pgmq's table) are filled in with psycopg.sql;
-- the exporter joins one such SELECT per flow with UNION ALL.
SELECT {flow_slug}::text AS flow_slug,
       count(*) AS depth,
       count(*) FILTER (WHERE q.vt <= clock_timestamp()) AS visible,
       extract(epoch FROM clock_timestamp() - min(q.enqueued_at))::float8 AS oldest_age
FROM {queue_table} AS q
