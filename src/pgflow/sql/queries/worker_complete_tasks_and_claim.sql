-- The run input as JSON text: the worker parses it once per run, not with every claim.
SELECT run_id, step_slug, input, msg_id, task_index, attempt,
       flow_input::text AS flow_input
FROM pgflow.complete_tasks_and_claim(
    %(completions)s, %(qty)s, %(vt)s, %(worker_id)s, %(flow_slug)s
)
