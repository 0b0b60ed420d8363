SELECT status FROM pgflow.complete_task(%(run_id)s, %(step_slug)s, %(task_index)s, %(output)s)
