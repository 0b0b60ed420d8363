-- The single place where state transitions leave the database: events in the order given,
-- each event[i] with payload[i] of a run of flow flow_slug[i]. A batch of completions sends
-- all its events with two statements instead of a function call each.
--
-- Supabase Realtime gets upstream's events verbatim when realtime.send exists. The check runs on
-- every call, not at install time, so realtime installed (or removed) later is picked up.
--
-- pg_notify always gets a compact copy on channel pgflow_events, for LISTEN on plain
-- PostgreSQL. It never carries input or output, so it stays far below NOTIFY's 8000-byte
-- payload limit whatever the flow produces. The events a worker acts on, step:started (new
-- tasks) and run:cancelled, also go to channel pgflow_worker_events, which workers listen to:
-- a listener is sent every notification of its channel, each a wake-up and some 20 us of CPU
-- on the client and as much in its server process, and on pgflow_events a busy worker would
-- be sent every event of the database, most of them of no use to it. Both can be turned off
-- per database, role or session:
--     ALTER DATABASE mydb SET pgflow.notify_events = off;
-- A GUC instead of a settings table: reading it costs no table access on the hot path.
--
-- for_workers[i] false keeps a step:started off pgflow_worker_events: the step's tasks were
-- all started, for the worker that reported, in the transaction that started the step, so
-- there is nothing for a worker to claim (NULL: every step:started goes there).
DROP FUNCTION IF EXISTS pgflow._emit_events(text[], jsonb[], text[]);

CREATE OR REPLACE FUNCTION pgflow._emit_events(
    events text[],
    payloads jsonb[],
    flow_slugs text[],
    for_workers boolean[] DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    -- realtime.send and pg_notify are volatile, so they run after the sort: in array order.
    IF pg_catalog.to_regprocedure('realtime.send(jsonb,text,text,boolean)') IS NOT NULL THEN
        PERFORM realtime.send(e.payload, e.event, 'pgflow:run:' || (e.payload ->> 'run_id'), false)
        FROM unnest(_emit_events.events, _emit_events.payloads)
             WITH ORDINALITY AS e(event, payload, position)
        ORDER BY e.position;
    END IF;

    IF lower(coalesce(current_setting('pgflow.notify_events', true), ''))
        NOT IN ('off', 'false', 'no', '0') THEN
        PERFORM pg_catalog.pg_notify('pgflow_events', c.compact),
                CASE WHEN c.event_type IN ('step:started', 'run:cancelled')
                          AND c.for_workers IS DISTINCT FROM false
                     THEN pg_catalog.pg_notify('pgflow_worker_events', c.compact)
                END
        FROM (
            SELECT e.position,
                   e.for_workers,
                   e.payload ->> 'event_type' AS event_type,
                   json_build_object(
                       'event_type', e.payload ->> 'event_type',
                       'run_id', e.payload ->> 'run_id',
                       'flow_slug', e.flow_slug,
                       'step_slug', e.payload ->> 'step_slug',
                       'status', e.payload ->> 'status'
                   )::text AS compact
            FROM unnest(_emit_events.payloads, _emit_events.flow_slugs, _emit_events.for_workers)
                 WITH ORDINALITY AS e(payload, flow_slug, for_workers, position)
        ) AS c
        ORDER BY c.position;
    END IF;
END;
$$;
