-- The effective timeout of each step as the database has it (it wins over the code's options).
SELECT s.step_slug, coalesce(s.opt_timeout, f.opt_timeout) AS timeout
FROM pgflow.steps AS s
JOIN pgflow.flows AS f ON f.flow_slug = s.flow_slug
WHERE s.flow_slug = %(flow_slug)s
