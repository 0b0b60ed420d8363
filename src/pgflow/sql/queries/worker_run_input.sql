-- A run's input, for a claimed task whose claim left it out (the worker said it held it) when
-- the worker no longer holds it.
SELECT input FROM pgflow.runs WHERE run_id = %(run_id)s
