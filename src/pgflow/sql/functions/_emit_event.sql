-- One event: see _emit_events, which sends it.
CREATE OR REPLACE FUNCTION pgflow._emit_event(event text, payload jsonb, flow_slug text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
BEGIN
    PERFORM pgflow._emit_events(
        ARRAY[_emit_event.event], ARRAY[_emit_event.payload], ARRAY[_emit_event.flow_slug]
    );
END;
$$;
