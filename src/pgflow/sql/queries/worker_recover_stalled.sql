SELECT run_id, step_slug, task_index, action
FROM pgflow.recover_stalled_tasks(make_interval(secs => %(margin)s), %(max_requeues)s)
