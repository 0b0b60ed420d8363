-- Workers that sent a heartbeat in the last %(live_seconds)s seconds and have not stopped, per
-- queue: those taking work and those told to stop (deprecated_at). A range on
-- idx_workers_heartbeat. stopped_at, a column of newer pgflow cores, is read through to_jsonb
-- so that this works with and without it.
SELECT w.queue_name AS flow_slug,
       count(*) FILTER (WHERE w.deprecated_at IS NULL) AS live,
       count(*) FILTER (WHERE w.deprecated_at IS NOT NULL) AS deprecated
FROM pgflow.workers AS w
WHERE w.last_heartbeat_at > now() - make_interval(secs => %(live_seconds)s)
  AND (to_jsonb(w) ->> 'stopped_at') IS NULL
GROUP BY w.queue_name
