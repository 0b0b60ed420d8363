-- Fire one occurrence of a schedule: start its run, unless the occurrence was fired already
-- (by this or any other scheduler), is older than what the schedule has fired, or the
-- schedule is disabled. Returns the new run's id, or NULL when nothing was started.
--
-- Exactly once: the occurrence row and the run commit together, and the occurrence's primary
-- key lets only one transaction insert it; a racing scheduler waits for the row lock on the
-- schedule, then finds the occurrence taken.
CREATE OR REPLACE FUNCTION pgflow.fire_schedule(schedule_name text, scheduled_for timestamptz)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
AS $$
DECLARE
    -- Occurrence rows kept per schedule: enough to show recent history; the schedule's
    -- last_occurrence_at guards what is older.
    c_keep constant int := 100;
    v_schedule pgflow.schedules;
    v_run_id uuid := gen_random_uuid();
BEGIN
    SELECT * INTO v_schedule FROM pgflow.schedules AS s
    WHERE s.schedule_name = fire_schedule.schedule_name
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule % does not exist', fire_schedule.schedule_name
            USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT v_schedule.enabled
       OR fire_schedule.scheduled_for <= v_schedule.active_since
       OR fire_schedule.scheduled_for < v_schedule.last_occurrence_at THEN
        RETURN NULL;
    END IF;

    INSERT INTO pgflow.schedule_occurrences (schedule_name, scheduled_for, run_id)
    VALUES (fire_schedule.schedule_name, fire_schedule.scheduled_for, v_run_id)
    ON CONFLICT ON CONSTRAINT schedule_occurrences_pkey DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM pgflow.start_flow(v_schedule.flow_slug, v_schedule.input, v_run_id);

    UPDATE pgflow.schedules AS s
    SET last_occurrence_at = greatest(s.last_occurrence_at, fire_schedule.scheduled_for)
    WHERE s.schedule_name = fire_schedule.schedule_name;

    -- Bounded pruning: at most the rows beyond the newest c_keep (one per firing, normally).
    DELETE FROM pgflow.schedule_occurrences AS o
    WHERE o.schedule_name = fire_schedule.schedule_name
      AND o.scheduled_for < (
          SELECT k.scheduled_for FROM pgflow.schedule_occurrences AS k
          WHERE k.schedule_name = fire_schedule.schedule_name
          ORDER BY k.scheduled_for DESC
          OFFSET c_keep - 1 LIMIT 1);
    RETURN v_run_id;
END;
$$;
