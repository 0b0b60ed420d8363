-- start_tasks, and what a worker's claim needs besides (additive to the 0.8.1 contract):
-- each task's attempt number, and its run's input with the run's first task (by message id)
-- only, NULL with the others (a map over a large input would otherwise carry the whole array
-- once per task). start_tasks returns its columns of this; claim_tasks all of it.
--
-- The timeout extension follows the contract; upstream 0.8.1 as shipped leaves the read's
-- short timeout in place (seen in differential tests), so a long task's message keeps coming
-- back to pollers. Dropping the "vt_done" join at the end gives upstream's behaviour.
--
-- p_read_vt: how long the caller's read hid the messages, when it read them in this same
-- transaction. Every started task's message is hidden for its step's timeout + 2 s; those
-- already hidden for exactly that long are not updated a second time (NULL: all are).
--
-- p_started_msg_ids: messages of tasks that this transaction has already started for
-- p_worker_id (complete_tasks_and_claim starts the tasks it releases as it inserts them,
-- their messages sent hidden for the timeout): returned like the others, with their input,
-- and neither updated nor hidden again.
--
-- The version without p_started_msg_ids goes: a call with four arguments would be ambiguous.
DROP FUNCTION IF EXISTS pgflow._start_tasks(text, bigint[], uuid, int);

CREATE OR REPLACE FUNCTION pgflow._start_tasks(
    p_flow_slug text,
    p_msg_ids bigint[],
    p_worker_id uuid,
    p_read_vt int,
    p_started_msg_ids bigint[]
)
RETURNS TABLE (
    flow_slug text,
    run_id uuid,
    step_slug text,
    input jsonb,
    msg_id bigint,
    task_index int,
    attempt int,
    flow_input jsonb
)
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
-- PL/pgSQL rather than SQL so that the plan of this hot query is cached per session
-- (PostgreSQL before 18 plans an SQL function's body again on every call).
-- p_msg_ids is an array: with the default plan cache mode its big statement would be planned
-- again on every call (a generic plan looks dearer for short arrays), 1.5-2 ms a call.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH updated AS (
        -- Only queued tasks: a redelivered message of a task that is already running (or
        -- done) must not start it twice. Tasks of failed or cancelled runs are left alone,
        -- and so are those of skipped steps (a message read just before the skip).
        UPDATE pgflow.step_tasks AS t
        SET status = 'started',
            started_at = now(),
            attempts_count = t.attempts_count + 1,
            last_worker_id = p_worker_id
        FROM pgflow.runs AS r, pgflow.step_states AS ss
        WHERE t.flow_slug = p_flow_slug
          AND t.message_id = ANY (p_msg_ids)
          AND t.status = 'queued'
          -- A task queued by a transaction that began after this one waits for a later
          -- claim (started_at would precede queued_at; see claim_tasks).
          AND t.queued_at <= now()
          AND r.run_id = t.run_id
          AND r.status NOT IN ('failed', 'cancelled')
          AND ss.run_id = t.run_id
          AND ss.step_slug = t.step_slug
          AND ss.status <> 'skipped'
        RETURNING t.flow_slug, t.run_id, t.step_slug, t.task_index, t.message_id,
                  t.attempts_count
    ),
    started AS (
        SELECT * FROM updated
        UNION ALL
        SELECT t.flow_slug, t.run_id, t.step_slug, t.task_index, t.message_id, t.attempts_count
        FROM pgflow.step_tasks AS t
        WHERE t.flow_slug = p_flow_slug
          AND t.message_id = ANY (p_started_msg_ids)
          AND t.status = 'started'
          AND t.last_worker_id = p_worker_id
    ),
    run_inputs AS MATERIALIZED (
        -- Each run's input read once per claim ("#> '{}'" hands back the whole value, read
        -- out of its compressed storage): every task of a root map takes one element of it,
        -- and reading it once per task decompressed the whole array each time (a fifth of
        -- the server's time while a 10,000-item map drained).
        SELECT r.run_id, r.input #> '{}' AS input
        FROM pgflow.runs AS r
        WHERE r.run_id IN (SELECT st.run_id FROM started AS st)
    ),
    visibility AS (
        -- The extra 2 s covers the round trip between the handler finishing and complete_task.
        SELECT v.msg_id
        FROM (
            SELECT array_agg(st.message_id) AS ids, array_agg(o.vt_offset) AS offsets
            FROM updated AS st
            JOIN pgflow.steps AS s ON s.flow_slug = st.flow_slug AND s.step_slug = st.step_slug
            JOIN pgflow.flows AS f ON f.flow_slug = st.flow_slug
            CROSS JOIN LATERAL (SELECT coalesce(s.opt_timeout, f.opt_timeout) + 2) AS o(vt_offset)
            -- Messages the caller's read already hid for exactly that long are left alone.
            WHERE o.vt_offset IS DISTINCT FROM p_read_vt
        ) AS a
        CROSS JOIN LATERAL pgflow.set_vt_batch(p_flow_slug, a.ids, a.offsets) AS v
    )
    SELECT st.flow_slug,
           st.run_id,
           st.step_slug,
           CASE
               -- Root map: the task's element of the run input.
               WHEN s.step_type = 'map' AND s.deps_count = 0 THEN
                   ri.input -> st.task_index
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
               -- a skipped parent is absent. Each output is _step_output's expression written
               -- out: that function cannot be inlined (it sets search_path) and, before
               -- PostgreSQL 18, a call plans its body again, once per parent of every task.
               ELSE
                   jsonb_build_object('run', ri.input) || coalesce((
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
           st.task_index,
           st.attempts_count AS attempt,
           CASE WHEN row_number() OVER (PARTITION BY st.run_id ORDER BY st.message_id) = 1
                THEN ri.input
           END AS flow_input
    FROM started AS st
    JOIN run_inputs AS ri ON ri.run_id = st.run_id
    JOIN pgflow.steps AS s ON s.flow_slug = st.flow_slug AND s.step_slug = st.step_slug
    -- Referencing the visibility CTE is what makes it run; it yields a single row.
    CROSS JOIN (SELECT count(*) FROM visibility) AS vt_done
    ORDER BY st.message_id;
END;
$$;
