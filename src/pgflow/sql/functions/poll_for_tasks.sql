-- Kept so that workers from before 0.3 degrade to idling instead of erroring: current workers
-- read with pgmq.read_with_poll and claim with start_tasks. Only old TypeScript workers call
-- this, so the notice is upstream's text, advice to them included (differential tests).
CREATE OR REPLACE FUNCTION pgflow.poll_for_tasks(
    queue_name text,
    vt integer,
    qty integer,
    max_poll_seconds integer DEFAULT 5,
    poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgflow.step_task_record
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    RAISE NOTICE 'DEPRECATED: poll_for_tasks is deprecated and will be removed. Please update pgflow via "npx pgflow install".';
    RETURN;
END;
$$;
