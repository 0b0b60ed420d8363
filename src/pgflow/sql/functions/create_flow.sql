CREATE OR REPLACE FUNCTION pgflow.create_flow(
    flow_slug text,
    max_attempts int DEFAULT 3,
    base_delay int DEFAULT 5,
    timeout int DEFAULT 60
)
RETURNS pgflow.flows
LANGUAGE sql
VOLATILE
SET search_path = ''
AS $$
    -- Recompiling a flow must not silently change the options of an existing one.
    INSERT INTO pgflow.flows (flow_slug, opt_max_attempts, opt_base_delay, opt_timeout)
    VALUES (create_flow.flow_slug, create_flow.max_attempts, create_flow.base_delay, create_flow.timeout)
    ON CONFLICT (flow_slug) DO NOTHING;

    -- After the insert, so an invalid slug fails on slug_is_valid rather than inside pgmq.
    SELECT pgmq.create(create_flow.flow_slug)
    WHERE NOT EXISTS (
        SELECT 1 FROM pgmq.list_queues() AS q WHERE q.queue_name = create_flow.flow_slug
    );
    SELECT pgflow._create_queue_statements(create_flow.flow_slug);

    SELECT f.* FROM pgflow.flows AS f WHERE f.flow_slug = create_flow.flow_slug;
$$;
