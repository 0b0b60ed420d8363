-- Removes a flow completely: its queue (with archive), every run, state and task, and the
-- definition. Upstream pgflow (>= 0.10) defines and calls this very signature, so it is kept
-- byte-compatible (void, argument p_flow_slug). A missing flow or queue is not an error: the
-- caller wants the flow gone, and it is.
CREATE OR REPLACE FUNCTION pgflow.delete_flow_and_data(p_flow_slug text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pgmq.list_queues() AS q WHERE q.queue_name = p_flow_slug) THEN
        PERFORM pgmq.drop_queue(p_flow_slug);
    END IF;
    EXECUTE format(
        'DROP FUNCTION IF EXISTS pgflow.%I(text, bigint[], jsonb[], integer, integer)',
        '_queue_' || lower(p_flow_slug)
    );
    -- Children before parents, following the foreign keys.
    DELETE FROM pgflow.step_tasks AS t WHERE t.flow_slug = p_flow_slug;
    DELETE FROM pgflow.step_states AS s WHERE s.flow_slug = p_flow_slug;
    DELETE FROM pgflow.runs AS r WHERE r.flow_slug = p_flow_slug;
    DELETE FROM pgflow.deps AS d WHERE d.flow_slug = p_flow_slug;
    DELETE FROM pgflow.steps AS s WHERE s.flow_slug = p_flow_slug;
    DELETE FROM pgflow.flows AS f WHERE f.flow_slug = p_flow_slug;
END;
$$;
