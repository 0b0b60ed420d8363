-- The two 0.8.1 functions that run with their owner's rights (for browser clients) are
-- executable by PUBLIC by default, which would let any role with USAGE on schema pgflow start
-- runs of every flow and read every run. A database that hands out least-privilege roles
-- grants them to named roles instead (docs/roles.md), so the role helpers take them from PUBLIC.
CREATE OR REPLACE FUNCTION pgflow._revoke_public_definer_functions()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    REVOKE EXECUTE ON FUNCTION pgflow.start_flow_with_states(text, jsonb, uuid) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION pgflow.get_run_with_states(uuid) FROM PUBLIC;
END;
$$;
