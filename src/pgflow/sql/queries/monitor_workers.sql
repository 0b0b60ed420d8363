-- Workers, newest heartbeat first, with what they are now: 'stopped' (stopped_at, a column of
-- newer pgflow cores, read through to_jsonb so that this works with and without it),
-- 'deprecated', 'alive' (a heartbeat within %(live_seconds)s s) or 'silent'.
SELECT w.worker_id, w.queue_name AS flow_slug, w.function_name, w.started_at,
       w.last_heartbeat_at, w.deprecated_at, s.stopped_at,
       extract(epoch FROM now() - w.last_heartbeat_at)::float8 AS heartbeat_age,
       CASE WHEN s.stopped_at IS NOT NULL THEN 'stopped'
            WHEN w.deprecated_at IS NOT NULL THEN 'deprecated'
            WHEN w.last_heartbeat_at > now() - make_interval(secs => %(live_seconds)s) THEN 'alive'
            ELSE 'silent'
       END AS status
FROM pgflow.workers AS w
CROSS JOIN LATERAL (SELECT (to_jsonb(w) ->> 'stopped_at')::timestamptz AS stopped_at) AS s
ORDER BY w.last_heartbeat_at DESC, w.worker_id
