INSERT INTO pgflow.workers (worker_id, queue_name, function_name, started_at, last_heartbeat_at)
VALUES (%(worker_id)s, %(queue)s, %(function_name)s, clock_timestamp(), clock_timestamp())
ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat_at = clock_timestamp()
