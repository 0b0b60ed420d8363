-- The single place where state transitions leave the database.
--
-- Supabase Realtime gets upstream's event verbatim when realtime.send exists. The check runs on
-- every call, not at install time, so realtime installed (or removed) later is picked up.
--
-- pg_notify always gets a compact copy on channel pgflow_events for LISTEN-based wake-ups on
-- plain PostgreSQL. It never carries input or output, so it stays far below NOTIFY's 8000-byte
-- payload limit whatever the flow produces. It can be turned off per database, role or session:
--     ALTER DATABASE mydb SET pgflow.notify_events = off;
-- A GUC instead of a settings table: reading it costs no table access on the hot path.
CREATE OR REPLACE FUNCTION pgflow._emit_event(event text, payload jsonb, flow_slug text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    IF pg_catalog.to_regprocedure('realtime.send(jsonb,text,text,boolean)') IS NOT NULL THEN
        PERFORM realtime.send(payload, event, 'pgflow:run:' || (payload ->> 'run_id'), false);
    END IF;

    IF lower(coalesce(current_setting('pgflow.notify_events', true), ''))
        NOT IN ('off', 'false', 'no', '0') THEN
        PERFORM pg_catalog.pg_notify(
            'pgflow_events',
            json_build_object(
                'event_type', payload ->> 'event_type',
                'run_id', payload ->> 'run_id',
                'flow_slug', _emit_event.flow_slug,
                'step_slug', payload ->> 'step_slug',
                'status', payload ->> 'status'
            )::text
        );
    END IF;
END;
$$;
