-- The run input as JSON text, which the worker parses once per run, and not at all for the
-- runs whose input it already holds (known_runs): a map's tasks come ten at a time with it.
SELECT run_id, step_slug, input, msg_id, task_index, attempt,
       CASE WHEN run_id <> ALL (%(known_runs)s::uuid[]) THEN flow_input::text END AS flow_input
FROM pgflow.claim_tasks(%(flow_slug)s, %(qty)s, %(vt)s, %(worker_id)s)
