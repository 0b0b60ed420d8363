-- Every flow with its steps (in order) and whether its queue exists: the label values the
-- exporter reports, with zeros where nothing is counted.
SELECT f.flow_slug,
       ARRAY(
           SELECT s.step_slug FROM pgflow.steps AS s
           WHERE s.flow_slug = f.flow_slug ORDER BY s.step_index
       ) AS steps,
       EXISTS (SELECT FROM pgmq.meta AS m WHERE m.queue_name = f.flow_slug) AS has_queue
FROM pgflow.flows AS f
ORDER BY f.flow_slug
