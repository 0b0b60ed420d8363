-- One round trip for all the flows a process serves; a deprecated row tells its flow to stop.
UPDATE pgflow.workers
SET last_heartbeat_at = clock_timestamp()
WHERE worker_id = ANY(%(worker_ids)s)
RETURNING worker_id, deprecated_at IS NOT NULL AS deprecated
