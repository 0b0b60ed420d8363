-- Fire one occurrence: the new run's id, or NULL when it was fired already.
SELECT pgflow.fire_schedule(%(name)s, %(scheduled_for)s) AS run_id
