-- The run input as JSON text, which the worker parses once per run, and not at all for the
-- runs whose input it already holds (known_runs): a map's tasks come ten at a time with it.
--
-- When the claim gets fewer tasks than it asked for, one more row, with a NULL run_id: the
-- seconds until the next message of the queue becomes visible (NULL: none is waiting), which
-- the worker would otherwise ask for in a second round trip before it sleeps. The queue is
-- read as the statement began: the messages just claimed are left out by id.
WITH claimed AS MATERIALIZED (
    SELECT c.run_id, c.step_slug, c.input, c.msg_id, c.task_index, c.attempt, c.flow_input
    FROM pgflow.claim_tasks(%(flow_slug)s, %(qty)s, %(vt)s, %(worker_id)s) AS c
)
SELECT c.run_id, c.step_slug, c.input, c.msg_id, c.task_index, c.attempt,
       CASE WHEN c.run_id <> ALL (%(known_runs)s::uuid[]) THEN c.flow_input::text END AS flow_input,
       NULL::float8 AS next_visible
FROM claimed AS c
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT extract(epoch FROM (min(q.vt) - clock_timestamp()))::float8
        FROM pgmq.{table} AS q
        WHERE q.msg_id <> ALL (ARRAY(SELECT c.msg_id FROM claimed AS c)))
WHERE (SELECT count(*) FROM claimed) < %(qty)s
