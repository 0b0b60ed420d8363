-- Least privilege for a worker (see docs/roles.md). Every pgflow function the worker calls is
-- SECURITY INVOKER, so table privileges are the gate: the role may move tasks, steps and runs
-- along (UPDATE, and INSERT of the tasks a completed step queues) and register its heartbeat,
-- but not start runs (no INSERT on runs), change flow definitions or delete anything. Queue
-- tables are granted for the given flows only, so its task calls on any other flow fail on the
-- queue. Re-run it after adding a flow to the role; granting twice is harmless.
CREATE OR REPLACE FUNCTION pgflow.grant_worker_role(role_name text, flow_slugs text[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    v_missing text;
    v_queue text;
BEGIN
    SELECT string_agg(format('%L', s.slug), ', ') INTO v_missing
    FROM unnest(grant_worker_role.flow_slugs) AS s(slug)
    WHERE NOT EXISTS (SELECT 1 FROM pgflow.flows AS f WHERE f.flow_slug = s.slug);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'cannot grant worker role %: no flow %', role_name, v_missing
            USING HINT = 'create the flows first (their queues are what is granted)';
    END IF;

    PERFORM pgflow._revoke_public_definer_functions();
    EXECUTE format('GRANT USAGE ON SCHEMA pgflow, pgmq TO %I', role_name);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA pgflow TO %I', role_name);
    EXECUTE format(
        'GRANT UPDATE ON pgflow.runs, pgflow.step_states, pgflow.step_tasks TO %I', role_name
    );
    EXECUTE format('GRANT INSERT ON pgflow.step_tasks TO %I', role_name);
    EXECUTE format('GRANT INSERT, UPDATE ON pgflow.workers TO %I', role_name);
    EXECUTE format('GRANT SELECT ON pgmq.meta TO %I', role_name);
    FOREACH v_queue IN ARRAY grant_worker_role.flow_slugs LOOP
        EXECUTE format(
            'GRANT SELECT, INSERT, UPDATE, DELETE ON pgmq.%I TO %I', 'q_' || lower(v_queue), role_name
        );
        EXECUTE format('GRANT SELECT, INSERT ON pgmq.%I TO %I', 'a_' || lower(v_queue), role_name);
    END LOOP;
END;
$$;
