-- The run input as JSON text: the worker parses it once per run, not with every claim.
SELECT run_id, step_slug, input, msg_id, task_index, attempt,
       flow_input::text AS flow_input
FROM pgflow.complete_task_and_claim(
    %(run_id)s, %(step_slug)s, %(task_index)s, %(output)s, %(qty)s, %(vt)s, %(worker_id)s
)
