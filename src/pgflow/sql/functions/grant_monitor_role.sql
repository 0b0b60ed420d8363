-- Read-only access for monitoring and dashboards (see docs/roles.md): SELECT on every pgflow and
-- pgmq table, including tables the calling role creates later (new flows' queues), and
-- get_run_with_states. Nothing that writes: every writing function is SECURITY INVOKER and
-- fails on table privileges, and the SECURITY DEFINER start_flow_with_states is not granted.
CREATE OR REPLACE FUNCTION pgflow.grant_monitor_role(role_name text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    PERFORM pgflow._revoke_public_definer_functions();
    EXECUTE format('GRANT USAGE ON SCHEMA pgflow, pgmq TO %I', role_name);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA pgflow, pgmq TO %I', role_name);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA pgflow, pgmq GRANT SELECT ON TABLES TO %I', role_name
    );
    EXECUTE format('GRANT EXECUTE ON FUNCTION pgflow.get_run_with_states(uuid) TO %I', role_name);
END;
$$;
