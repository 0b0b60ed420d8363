-- The run input as JSON text: the worker parses it once per run, not with every claim.
SELECT run_id, step_slug, input, msg_id, task_index, attempt,
       flow_input::text AS flow_input
FROM pgflow.claim_tasks(%(flow_slug)s, %(qty)s, %(vt)s, %(worker_id)s)
