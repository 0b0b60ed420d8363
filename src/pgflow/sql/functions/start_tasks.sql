-- Phase two of polling: the worker has read messages with a short visibility timeout; this
-- claims their tasks, hides the messages for the step's whole timeout and hands out inputs.
-- The timeout extension follows the contract; upstream 0.8.1 as shipped leaves the read's
-- short timeout in place (seen in differential tests), so a long task's message keeps coming
-- back to pollers. Dropping the "vt_done" join at the end gives upstream's behaviour.
--
-- PL/pgSQL rather than SQL only so that the plan of this hot query is cached per session
-- (PostgreSQL before 18 plans an SQL function's body again on every call); callers see no
-- difference.
CREATE OR REPLACE FUNCTION pgflow.start_tasks(flow_slug text, msg_ids bigint[], worker_id uuid)
RETURNS SETOF pgflow.step_task_record
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
-- msg_ids is an array: with the default plan cache mode its big statement would be planned
-- again on every call (a generic plan looks dearer for short arrays), 1.5-2 ms a call.
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    WITH started AS (
        -- Only queued tasks: a redelivered message of a task that is already running (or
        -- done) must not start it twice. Tasks of failed or cancelled runs are left alone,
        -- and so are those of skipped steps (a message read just before the skip).
        UPDATE pgflow.step_tasks AS t
        SET status = 'started',
            started_at = now(),
            attempts_count = t.attempts_count + 1,
            last_worker_id = start_tasks.worker_id
        FROM pgflow.runs AS r, pgflow.step_states AS ss
        WHERE t.flow_slug = start_tasks.flow_slug
          AND t.message_id = ANY (start_tasks.msg_ids)
          AND t.status = 'queued'
          AND r.run_id = t.run_id
          AND r.status NOT IN ('failed', 'cancelled')
          AND ss.run_id = t.run_id
          AND ss.step_slug = t.step_slug
          AND ss.status <> 'skipped'
        RETURNING t.flow_slug, t.run_id, t.step_slug, t.task_index, t.message_id
    ),
    visibility AS (
        -- The extra 2 s covers the round trip between the handler finishing and complete_task.
        SELECT v.msg_id
        FROM (
            SELECT array_agg(st.message_id) AS ids,
                   array_agg(coalesce(s.opt_timeout, f.opt_timeout) + 2) AS offsets
            FROM started AS st
            JOIN pgflow.steps AS s ON s.flow_slug = st.flow_slug AND s.step_slug = st.step_slug
            JOIN pgflow.flows AS f ON f.flow_slug = st.flow_slug
        ) AS a
        CROSS JOIN LATERAL pgflow.set_vt_batch(start_tasks.flow_slug, a.ids, a.offsets) AS v
    )
    SELECT st.flow_slug,
           st.run_id,
           st.step_slug,
           CASE
               -- Root map: the task's element of the run input.
               WHEN s.step_type = 'map' AND s.deps_count = 0 THEN
                   r.input -> st.task_index
               -- Dependent map: element task_index of the parent's output. For a map parent
               -- that element is the output of the parent task with the same index, read
               -- directly instead of aggregating the whole array for every task.
               WHEN s.step_type = 'map' THEN (
                   SELECT CASE
                              -- SQL NULL becomes JSON null, as it would inside the array.
                              WHEN ps.step_type = 'map' THEN coalesce(pt.output, 'null'::jsonb)
                              ELSE pt.output -> st.task_index
                          END
                   FROM pgflow.deps AS d
                   JOIN pgflow.steps AS ps
                     ON ps.flow_slug = d.flow_slug AND ps.step_slug = d.dep_slug
                   JOIN pgflow.step_tasks AS pt
                     ON pt.run_id = st.run_id
                    AND pt.step_slug = d.dep_slug
                    AND pt.task_index = CASE WHEN ps.step_type = 'map' THEN st.task_index ELSE 0 END
                    AND pt.status = 'completed'
                   WHERE d.flow_slug = st.flow_slug AND d.step_slug = st.step_slug
                   LIMIT 1
               )
               -- Single step: the run input under "run" plus each parent's output by slug;
               -- a skipped parent is absent.
               ELSE
                   jsonb_build_object('run', r.input) || coalesce((
                       SELECT jsonb_object_agg(
                           d.dep_slug,
                           CASE
                               WHEN ps.step_type = 'map' THEN coalesce((
                                   SELECT jsonb_agg(pt.output ORDER BY pt.task_index)
                                   FROM pgflow.step_tasks AS pt
                                   WHERE pt.run_id = st.run_id
                                     AND pt.step_slug = d.dep_slug
                                     AND pt.status = 'completed'
                               ), '[]'::jsonb)
                               ELSE (
                                   SELECT pt.output
                                   FROM pgflow.step_tasks AS pt
                                   WHERE pt.run_id = st.run_id
                                     AND pt.step_slug = d.dep_slug
                                     AND pt.task_index = 0
                                     AND pt.status = 'completed'
                               )
                           END
                       )
                       FROM pgflow.deps AS d
                       JOIN pgflow.steps AS ps
                         ON ps.flow_slug = d.flow_slug AND ps.step_slug = d.dep_slug
                       JOIN pgflow.step_states AS pss
                         ON pss.run_id = st.run_id AND pss.step_slug = d.dep_slug
                       WHERE d.flow_slug = st.flow_slug
                         AND d.step_slug = st.step_slug
                         AND pss.status <> 'skipped'
                   ), '{}'::jsonb)
           END AS input,
           st.message_id AS msg_id,
           st.task_index
    FROM started AS st
    JOIN pgflow.runs AS r ON r.run_id = st.run_id
    JOIN pgflow.steps AS s ON s.flow_slug = st.flow_slug AND s.step_slug = st.step_slug
    -- Referencing the visibility CTE is what makes it run; it yields a single row.
    CROSS JOIN (SELECT count(*) FROM visibility) AS vt_done
    ORDER BY st.message_id;
END;
$$;
