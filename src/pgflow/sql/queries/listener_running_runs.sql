-- The server's clock and the runs in progress (of the given flows, or all): where a listener
-- starts from, and what it re-reads after a reconnect (idx_runs_status_started_at).
SELECT clock_timestamp() AS now,
       ARRAY(
           SELECT r.run_id FROM pgflow.runs AS r
           WHERE r.status = 'started'
             AND (%(flows)s::text[] IS NULL OR r.flow_slug = ANY (%(flows)s))
       ) AS running
