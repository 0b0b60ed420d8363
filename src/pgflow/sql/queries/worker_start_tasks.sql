SELECT flow_slug, run_id, step_slug, input, msg_id, task_index
FROM pgflow.start_tasks(%(flow_slug)s, %(msg_ids)s, %(worker_id)s)
