CREATE OR REPLACE FUNCTION pgflow.maybe_complete_run(run_id uuid)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    -- One run of the set-based version, so the two cannot drift apart.
    PERFORM pgflow._complete_finished_runs(ARRAY[maybe_complete_run.run_id], ARRAY[0]);
END;
$$;
