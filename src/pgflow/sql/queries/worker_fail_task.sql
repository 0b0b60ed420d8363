SELECT status FROM pgflow.fail_task(%(run_id)s, %(step_slug)s, %(task_index)s, %(error)s)
