-- Upstream documents this name and signature; other pgflow tools call it, so it returns void.
-- Runs still in progress are kept whatever their age: deleting them would strand workers.
CREATE OR REPLACE FUNCTION pgflow.prune_data_older_than(retention_interval interval)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    -- One implementation: prune_runs does the work and counts it; this keeps the void shape.
    PERFORM pgflow.prune_runs(prune_data_older_than.retention_interval);
END;
$$;
