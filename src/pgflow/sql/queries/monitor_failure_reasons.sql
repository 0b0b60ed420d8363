-- Why the runs started in [since, until) failed: the error of the step that failed each run
-- (a run fails with its first failed step), most frequent first.
SELECT ss.error_message AS error, count(*) AS count
FROM pgflow.step_states AS ss
WHERE ss.status = 'failed'
  AND ss.flow_slug = ANY (%(flows)s::text[])
  AND ss.created_at >= %(since)s AND ss.created_at < %(until)s
GROUP BY ss.error_message
ORDER BY count(*) DESC, ss.error_message
LIMIT %(top)s
