-- Counts the steps that the caller completed off their runs' remaining_steps and completes
-- those of the given runs that have no step left, in one statement however many there are,
-- announcing each (run:completed, in run_id order). maybe_complete_run is this for one run
-- and no step; a worker's batch of completions finishes many runs at once (every task of a
-- one-step flow finishes its run).
--
-- p_steps_done[i] steps are counted off run p_run_ids[i] (a run may be named more than once;
-- NULL or 0: none). Counting and completing in one update writes the run's row once: as two
-- updates, the second (of the status, which is indexed) also left a dead version of the first
-- behind, with an entry in each of the run's indexes whenever the first could not stay on its
-- page.
--
-- The run's output is what its leaf steps (those nothing depends on) produced. Driven from
-- the flow's steps, each step state found by its primary key (run_id, step_slug); "completed"
-- is a FILTER, not a WHERE, so that the planner can never pick a partial index on completed
-- step states (migration 0004, for metrics) and filter it by run: with statistics taken
-- before a burst of completions that read every completed step state of the flow on each run
-- completion (7.8 ms a call instead of 0.35 ms).
--
-- The one-argument version (before steps were counted here) goes: beside this one, a call
-- with one array would be ambiguous.
DROP FUNCTION IF EXISTS pgflow._complete_finished_runs(uuid[]);

CREATE OR REPLACE FUNCTION pgflow._complete_finished_runs(p_run_ids uuid[], p_steps_done int[])
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
-- Its statements take arrays: a custom plan per call (the default while a generic plan looks
-- dearer for short arrays) would plan them all again on every call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_events text[];
    v_payloads jsonb[];
    v_flows text[];
BEGIN
    WITH counts AS (
        SELECT c.run_id, coalesce(sum(c.steps_done), 0)::int AS steps_done
        FROM unnest(p_run_ids, p_steps_done) AS c(run_id, steps_done)
        WHERE c.run_id IS NOT NULL
        GROUP BY c.run_id
    ),
    updated AS (
        UPDATE pgflow.runs AS r
        SET remaining_steps = r.remaining_steps - c.steps_done,
            status = CASE WHEN r.remaining_steps = c.steps_done THEN 'completed' ELSE r.status END,
            completed_at = CASE WHEN r.remaining_steps = c.steps_done THEN now() ELSE r.completed_at END,
            -- Each leaf step's output is _step_output's expression written out: that function
            -- cannot be inlined (it sets search_path) and, before PostgreSQL 18, a call plans
            -- its body again, once per leaf step of every finished run.
            output = CASE WHEN r.remaining_steps = c.steps_done THEN (
                SELECT jsonb_object_agg(
                    s.step_slug,
                    CASE
                        WHEN s.step_type = 'map' THEN coalesce((
                            SELECT jsonb_agg(t.output ORDER BY t.task_index)
                            FROM pgflow.step_tasks AS t
                            WHERE t.run_id = ss.run_id
                              AND t.step_slug = ss.step_slug
                              AND t.status = 'completed'
                        ), '[]'::jsonb)
                        ELSE (
                            SELECT t.output
                            FROM pgflow.step_tasks AS t
                            WHERE t.run_id = ss.run_id
                              AND t.step_slug = ss.step_slug
                              AND t.task_index = 0
                              AND t.status = 'completed'
                        )
                    END
                ) FILTER (WHERE ss.status = 'completed')
                FROM pgflow.steps AS s
                JOIN pgflow.step_states AS ss
                  ON ss.run_id = r.run_id AND ss.step_slug = s.step_slug
                WHERE s.flow_slug = r.flow_slug
                  AND NOT EXISTS (
                      SELECT 1 FROM pgflow.deps AS d
                      WHERE d.flow_slug = s.flow_slug AND d.dep_slug = s.step_slug
                  )
            ) ELSE r.output END
        FROM counts AS c
        WHERE r.run_id = c.run_id
          -- 'started' rather than "not completed": a failed run must never turn completed.
          -- The callers count steps off started runs only.
          AND r.status = 'started'
          AND (c.steps_done <> 0 OR r.remaining_steps = 0)
        RETURNING r.run_id, r.flow_slug, r.status, r.output, r.completed_at
    ),
    finished AS (
        SELECT * FROM updated AS u WHERE u.status = 'completed'
    )
    SELECT array_agg('run:completed'::text ORDER BY f.run_id),
           array_agg(
               jsonb_build_object(
                   'event_type', 'run:completed',
                   'run_id', f.run_id,
                   'flow_slug', f.flow_slug,
                   'status', 'completed',
                   'output', f.output,
                   'completed_at', f.completed_at
               )
               ORDER BY f.run_id
           ),
           array_agg(f.flow_slug ORDER BY f.run_id)
    INTO v_events, v_payloads, v_flows
    FROM finished AS f;
    IF v_events IS NOT NULL THEN
        PERFORM pgflow._emit_events(v_events, v_payloads, v_flows);
    END IF;
END;
$$;
