-- A batch of completions with a fixed number of statements, whatever its size: what makes a
-- busy worker cheaper per task than one complete_task call per task. Each statement of
-- PL/pgSQL costs its executor set-up (for a table with CHECK constraints, re-reading them),
-- so complete_task's dozen statements a task become a dozen a batch here.
--
-- The arrays are parallel: completion i is (p_run_ids[i], p_step_slugs[i], p_task_indexes[i],
-- p_outputs[i]). The runs of the batch are locked first, in run_id order. A run goes the
-- set-based way when every one of its completions is the common case of complete_task (see
-- _complete_started_task): its run and step started, its task started and named once, no
-- type check needed. Any other run has its completions applied one by one through
-- complete_task, sorted by step slug and task index, with exactly complete_task's semantics.
--
-- The state reached is the one the same completions applied one by one reach. The events of
-- the set-based runs are all sent, each after what caused it, in this order: step:completed
-- (by run, step), what the cascade of conditions and taskless steps sends, step:started (by
-- run, step), run:completed (by run). One by one, a step started by the first completion of
-- a run would be announced before the run's second step:completed; here after it.
--
-- Up to p_prestart tasks of the steps it starts, of flow p_claim_flow, are started for worker
-- p_worker_id as they are inserted, instead of being queued for the worker to read and start
-- a moment later (complete_tasks_and_claim, with the slots the batch frees); their message
-- ids are returned. None when p_prestart is 0 or p_worker_id NULL: then the state is exactly
-- that of the one-by-one completions.
--
-- The version without the claim (four arguments, returning nothing) goes.
DROP FUNCTION IF EXISTS pgflow._complete_task_batch(uuid[], text[], int[], jsonb[]);

CREATE OR REPLACE FUNCTION pgflow._complete_task_batch(
    p_run_ids uuid[],
    p_step_slugs text[],
    p_task_indexes int[],
    p_outputs jsonb[],
    p_claim_flow text,
    p_worker_id uuid,
    p_prestart int
)
RETURNS bigint[]
LANGUAGE plpgsql
VOLATILE
SET search_path = ''
-- Its statements take arrays: a custom plan per call (the default while a generic plan looks
-- dearer for short arrays) would plan them all again on every call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    -- Completions of the set-based runs.
    f_run uuid[];
    f_step text[];
    f_index int[];
    f_output jsonb[];
    -- Positions (in the arrays given) of the completions applied one by one, in their order.
    v_one_by_one bigint[];
    v_position bigint;
    -- Steps this batch completed: run, step, flow, width handed to a map child, and output
    -- (a single step's; NULL for a map step, whose output is its tasks').
    c_run uuid[];
    c_step text[];
    c_flow text[];
    c_width int[];
    c_output jsonb[];
    -- Events to send, in order.
    v_events text[];
    v_for_workers boolean[];
    v_payloads jsonb[];
    v_flows text[];
    v_cascade_runs uuid[];
    -- Steps to count off each run (none in the runs of the cascade: counted before it).
    v_count_runs uuid[];
    v_count_steps int[];
    v_run uuid;
    -- Messages of the completed tasks, archived per queue.
    a_flow text[];
    a_message bigint[];
    v_archive record;
    -- Steps this batch started.
    s_run uuid[];
    s_step text[];
    s_flow text[];
    s_started_at timestamptz[];
    s_tasks int[];
    s_deps int[];
    -- Tasks of the started steps, whether started for the worker at once, and the delay of
    -- their messages.
    t_run uuid[];
    t_step text[];
    t_flow text[];
    t_index int[];
    t_started boolean[];
    t_delay int[];
    v_group record;
    v_started_messages bigint[] := '{}';
BEGIN
    PERFORM 1 FROM pgflow.runs AS r
    WHERE r.run_id = ANY (p_run_ids)
    ORDER BY r.run_id
    FOR UPDATE;

    WITH batch AS (
        SELECT b.run_id, b.step_slug, b.task_index, b.output, b.position
        FROM unnest(p_run_ids, p_step_slugs, p_task_indexes, p_outputs)
             WITH ORDINALITY AS b(run_id, step_slug, task_index, output, position)
    ),
    judged AS (
        SELECT b.*,
               coalesce(
                   r.status = 'started'
                   AND t.status = 'started'
                   AND ss.status = 'started'
                   AND count(*) OVER (PARTITION BY b.run_id, b.step_slug, b.task_index) = 1
                   AND (s.step_type = 'map'
                        OR jsonb_typeof(b.output) = 'array'
                        OR NOT EXISTS (
                            SELECT 1
                            FROM pgflow.deps AS d
                            JOIN pgflow.steps AS cs
                              ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
                            WHERE d.flow_slug = s.flow_slug
                              AND d.dep_slug = s.step_slug
                              AND cs.step_type = 'map'
                        )),
                   false
               ) AS common
        FROM batch AS b
        LEFT JOIN pgflow.runs AS r ON r.run_id = b.run_id
        LEFT JOIN pgflow.step_states AS ss
          ON ss.run_id = b.run_id AND ss.step_slug = b.step_slug
        LEFT JOIN pgflow.steps AS s ON s.flow_slug = r.flow_slug AND s.step_slug = b.step_slug
        LEFT JOIN pgflow.step_tasks AS t
          ON t.run_id = b.run_id AND t.step_slug = b.step_slug AND t.task_index = b.task_index
    ),
    by_run AS (
        SELECT j.*, bool_and(j.common) OVER (PARTITION BY j.run_id) AS set_based
        FROM judged AS j
    )
    SELECT array_agg(x.run_id ORDER BY x.run_id, x.step_slug, x.task_index) FILTER (WHERE x.set_based),
           array_agg(x.step_slug ORDER BY x.run_id, x.step_slug, x.task_index) FILTER (WHERE x.set_based),
           array_agg(x.task_index ORDER BY x.run_id, x.step_slug, x.task_index) FILTER (WHERE x.set_based),
           array_agg(x.output ORDER BY x.run_id, x.step_slug, x.task_index) FILTER (WHERE x.set_based),
           array_agg(x.position ORDER BY x.run_id, x.step_slug, x.task_index, x.position)
               FILTER (WHERE NOT x.set_based)
    INTO f_run, f_step, f_index, f_output, v_one_by_one
    FROM by_run AS x;

    IF f_run IS NOT NULL THEN
        -- Their messages are archived after the cascade, as complete_task does.
        WITH done AS (
            UPDATE pgflow.step_tasks AS t
            SET status = 'completed', completed_at = now(), output = b.output
            FROM unnest(f_run, f_step, f_index, f_output) AS b(run_id, step_slug, task_index, output)
            WHERE t.run_id = b.run_id AND t.step_slug = b.step_slug AND t.task_index = b.task_index
            RETURNING t.flow_slug, t.message_id
        )
        SELECT array_agg(d.flow_slug), array_agg(d.message_id)
        INTO a_flow, a_message
        FROM done AS d
        WHERE d.message_id IS NOT NULL;

        -- Steps whose last tasks these were, with the width each hands to a map child.
        WITH finished_tasks AS (
            SELECT b.run_id, b.step_slug, count(*)::int AS n,
                   -- A single step has one task: its output.
                   (array_agg(b.output))[1] AS output
            FROM unnest(f_run, f_step, f_output) AS b(run_id, step_slug, output)
            GROUP BY b.run_id, b.step_slug
        ),
        states AS (
            UPDATE pgflow.step_states AS ss
            SET remaining_tasks = ss.remaining_tasks - ft.n,
                status = CASE WHEN ss.remaining_tasks = ft.n THEN 'completed' ELSE ss.status END,
                completed_at = CASE WHEN ss.remaining_tasks = ft.n THEN now() ELSE ss.completed_at END
            FROM finished_tasks AS ft
            WHERE ss.run_id = ft.run_id AND ss.step_slug = ft.step_slug
            RETURNING ss.run_id, ss.step_slug, ss.flow_slug, ss.status, ss.initial_tasks,
                      ss.completed_at, ft.output
        )
        SELECT array_agg(st.run_id ORDER BY st.run_id, st.step_slug),
               array_agg(st.step_slug ORDER BY st.run_id, st.step_slug),
               array_agg(st.flow_slug ORDER BY st.run_id, st.step_slug),
               array_agg(
                   CASE
                       WHEN s.step_type = 'map' THEN st.initial_tasks
                       WHEN jsonb_typeof(st.output) = 'array' THEN jsonb_array_length(st.output)
                   END
                   ORDER BY st.run_id, st.step_slug
               ),
               array_agg(
                   CASE WHEN s.step_type = 'single' THEN st.output END
                   ORDER BY st.run_id, st.step_slug
               )
        INTO c_run, c_step, c_flow, c_width, c_output
        FROM states AS st
        JOIN pgflow.steps AS s ON s.flow_slug = st.flow_slug AND s.step_slug = st.step_slug
        WHERE st.status = 'completed';
    END IF;

    IF c_run IS NOT NULL THEN
        SELECT array_agg('step:' || x.step_slug || ':completed' ORDER BY x.position),
               array_agg(
                   jsonb_build_object(
                       'event_type', 'step:completed',
                       'run_id', x.run_id,
                       'step_slug', x.step_slug,
                       'status', 'completed',
                       'output', x.output,
                       'completed_at', x.completed_at
                   )
                   ORDER BY x.position
               ),
               array_agg(x.flow_slug ORDER BY x.position)
        INTO v_events, v_payloads, v_flows
        FROM (
            SELECT c.position, c.run_id, c.step_slug, c.flow_slug, ss.completed_at,
                   CASE
                       WHEN s.step_type = 'map' THEN pgflow._step_output(c.run_id, c.step_slug)
                       ELSE c.output
                   END AS output
            FROM unnest(c_run, c_step, c_flow, c_output)
                 WITH ORDINALITY AS c(run_id, step_slug, flow_slug, output, position)
            JOIN pgflow.steps AS s ON s.flow_slug = c.flow_slug AND s.step_slug = c.step_slug
            JOIN pgflow.step_states AS ss ON ss.run_id = c.run_id AND ss.step_slug = c.step_slug
        ) AS x;
        PERFORM pgflow._emit_events(v_events, v_payloads, v_flows);

        -- Dependents: one fewer dependency per parent completed (a fan-in may lose several
        -- at once); a map child takes its width from its one parent. A dependent left with
        -- no dependency starts in the same statement (a second update of the row in this
        -- transaction would also re-check its foreign keys), unless its run has a released
        -- step for the cascade (taskless or conditional): that run starts its steps after the
        -- cascade, as complete_task does, since the cascade may fail the run.
        WITH parents AS (
            SELECT * FROM unnest(c_run, c_step, c_flow, c_width) AS p(run_id, step_slug, flow_slug, width)
        ),
        children AS (
            SELECT p.run_id, d.step_slug, count(*)::int AS parents_done, max(p.width) AS width,
                   bool_or(cs.step_type = 'map') AS is_map,
                   bool_or(cs.required_input_pattern IS NOT NULL
                           OR cs.forbidden_input_pattern IS NOT NULL) AS conditional
            FROM parents AS p
            JOIN pgflow.deps AS d ON d.flow_slug = p.flow_slug AND d.dep_slug = p.step_slug
            JOIN pgflow.steps AS cs ON cs.flow_slug = d.flow_slug AND cs.step_slug = d.step_slug
            GROUP BY p.run_id, d.step_slug
        ),
        planned AS (
            SELECT ch.run_id, ch.step_slug, ch.parents_done, ch.conditional,
                   cst.status,
                   cst.remaining_deps = ch.parents_done AS ready,
                   CASE WHEN ch.is_map THEN ch.width ELSE cst.initial_tasks END AS tasks
            FROM children AS ch
            JOIN pgflow.step_states AS cst
              ON cst.run_id = ch.run_id AND cst.step_slug = ch.step_slug
        ),
        judged AS (
            SELECT pl.*,
                   bool_or(pl.ready AND (pl.tasks = 0 OR pl.conditional))
                       OVER (PARTITION BY pl.run_id) AS run_cascades
            FROM planned AS pl
        ),
        decided AS (
            SELECT j.*,
                   j.ready AND NOT j.run_cascades AND j.status = 'created' AND j.tasks > 0 AS starts
            FROM judged AS j
        ),
        released AS (
            UPDATE pgflow.step_states AS child
            SET remaining_deps = child.remaining_deps - dc.parents_done,
                initial_tasks = dc.tasks,
                status = CASE WHEN dc.starts THEN 'started' ELSE child.status END,
                started_at = CASE WHEN dc.starts THEN now() ELSE child.started_at END,
                remaining_tasks = CASE WHEN dc.starts THEN dc.tasks ELSE child.remaining_tasks END
            FROM decided AS dc
            WHERE child.run_id = dc.run_id AND child.step_slug = dc.step_slug
            RETURNING child.run_id, child.step_slug, child.flow_slug, child.started_at,
                      child.remaining_tasks, child.remaining_deps, dc.starts, dc.run_cascades
        )
        SELECT array_agg(DISTINCT rl.run_id) FILTER (WHERE rl.run_cascades),
               array_agg(rl.run_id) FILTER (WHERE rl.starts),
               array_agg(rl.step_slug) FILTER (WHERE rl.starts),
               array_agg(rl.flow_slug) FILTER (WHERE rl.starts),
               array_agg(rl.started_at) FILTER (WHERE rl.starts),
               array_agg(rl.remaining_tasks) FILTER (WHERE rl.starts),
               array_agg(rl.remaining_deps) FILTER (WHERE rl.starts)
        INTO v_cascade_runs, s_run, s_step, s_flow, s_started_at, s_tasks, s_deps
        FROM released AS rl;

        -- The completed steps are counted off their runs at the end, in the update that
        -- completes the runs left without a step (_complete_finished_runs), except in the
        -- runs of the cascade, which counts on them first.
        IF v_cascade_runs IS NOT NULL THEN
            UPDATE pgflow.runs AS r
            SET remaining_steps = r.remaining_steps - pr.steps_done
            FROM (
                SELECT c.run_id, count(*)::int AS steps_done
                FROM unnest(c_run) AS c(run_id)
                WHERE c.run_id = ANY (v_cascade_runs)
                GROUP BY c.run_id
            ) AS pr
            WHERE r.run_id = pr.run_id;
        END IF;

        -- Only released steps can be taskless or conditional (see _complete_started_task).
        FOR v_run IN SELECT x.run_id FROM unnest(v_cascade_runs) AS x(run_id) ORDER BY 1 LOOP
            PERFORM pgflow.cascade_resolve_conditions(v_run);
        END LOOP;
    END IF;

    FOR v_archive IN
        SELECT m.flow_slug, array_agg(m.message_id ORDER BY m.message_id) AS ids
        FROM unnest(a_flow, a_message) AS m(flow_slug, message_id)
        GROUP BY m.flow_slug
        ORDER BY m.flow_slug
    LOOP
        PERFORM pgflow._on_queue(v_archive.flow_slug, 'archive', v_archive.ids);
    END LOOP;

    IF v_cascade_runs IS NOT NULL THEN
        -- start_ready_steps for the runs that went through the cascade (those it failed are
        -- left alone).
        WITH started AS (
            UPDATE pgflow.step_states AS ss
            SET status = 'started', started_at = now(), remaining_tasks = ss.initial_tasks
            FROM pgflow.runs AS r
            WHERE ss.run_id = ANY (v_cascade_runs)
              AND ss.status = 'created'
              AND ss.remaining_deps = 0
              AND ss.initial_tasks > 0
              AND r.run_id = ss.run_id
              AND r.status = 'started'
            RETURNING ss.run_id, ss.step_slug, ss.flow_slug, ss.started_at, ss.remaining_tasks,
                      ss.remaining_deps
        )
        SELECT coalesce(s_run, '{}') || coalesce(array_agg(st.run_id), '{}'),
               coalesce(s_step, '{}') || coalesce(array_agg(st.step_slug), '{}'),
               coalesce(s_flow, '{}') || coalesce(array_agg(st.flow_slug), '{}'),
               coalesce(s_started_at, '{}') || coalesce(array_agg(st.started_at), '{}'),
               coalesce(s_tasks, '{}') || coalesce(array_agg(st.remaining_tasks), '{}'),
               coalesce(s_deps, '{}') || coalesce(array_agg(st.remaining_deps), '{}')
        INTO s_run, s_step, s_flow, s_started_at, s_tasks, s_deps
        FROM started AS st;
    END IF;

    IF cardinality(s_run) > 0 THEN
        -- The tasks of the started steps, in (run, step, task index) order. The first
        -- p_prestart of those the worker can take (of p_claim_flow, no start delay) are
        -- inserted started for p_worker_id, their messages sent hidden for the step's timeout
        -- + 2 s: the state claim_tasks would reach reading and starting them in this
        -- transaction (but for the messages' read_ct, left at 0), with each task and message
        -- written once instead of twice.
        WITH tasks AS (
            SELECT st.run_id, st.step_slug, st.flow_slug, i AS task_index,
                   coalesce(s.opt_start_delay, 0) AS start_delay,
                   coalesce(s.opt_timeout, f.opt_timeout) + 2 AS hidden_for,
                   p_worker_id IS NOT NULL
                       AND st.flow_slug = p_claim_flow
                       AND coalesce(s.opt_start_delay, 0) = 0 AS takeable
            FROM unnest(s_run, s_step, s_flow, s_tasks)
                 AS st(run_id, step_slug, flow_slug, remaining_tasks)
            JOIN pgflow.steps AS s ON s.flow_slug = st.flow_slug AND s.step_slug = st.step_slug
            JOIN pgflow.flows AS f ON f.flow_slug = st.flow_slug
            CROSS JOIN LATERAL generate_series(0, st.remaining_tasks - 1) AS i
        ),
        decided AS (
            SELECT tk.*,
                   tk.takeable
                   AND row_number() OVER (
                       PARTITION BY tk.takeable ORDER BY tk.run_id, tk.step_slug, tk.task_index
                   ) <= coalesce(p_prestart, 0) AS started
            FROM tasks AS tk
        )
        SELECT array_agg(d.run_id ORDER BY d.run_id, d.step_slug, d.task_index),
               array_agg(d.step_slug ORDER BY d.run_id, d.step_slug, d.task_index),
               array_agg(d.flow_slug ORDER BY d.run_id, d.step_slug, d.task_index),
               array_agg(d.task_index ORDER BY d.run_id, d.step_slug, d.task_index),
               array_agg(d.started ORDER BY d.run_id, d.step_slug, d.task_index),
               array_agg(CASE WHEN d.started THEN d.hidden_for ELSE d.start_delay END
                         ORDER BY d.run_id, d.step_slug, d.task_index)
        INTO t_run, t_step, t_flow, t_index, t_started, t_delay
        FROM decided AS d;

        SELECT array_agg('step:' || st.step_slug || ':started' ORDER BY st.run_id, st.step_slug),
               array_agg(
                   jsonb_build_object(
                       'event_type', 'step:started',
                       'run_id', st.run_id,
                       'step_slug', st.step_slug,
                       'status', 'started',
                       'started_at', st.started_at,
                       'remaining_tasks', st.remaining_tasks,
                       'remaining_deps', st.remaining_deps
                   )
                   ORDER BY st.run_id, st.step_slug
               ),
               array_agg(st.flow_slug ORDER BY st.run_id, st.step_slug),
               -- A step whose tasks were all started above has nothing for workers to claim.
               array_agg(coalesce(q.any_queued, true) ORDER BY st.run_id, st.step_slug)
        INTO v_events, v_payloads, v_flows, v_for_workers
        FROM unnest(s_run, s_step, s_flow, s_started_at, s_tasks, s_deps)
             AS st(run_id, step_slug, flow_slug, started_at, remaining_tasks, remaining_deps)
        LEFT JOIN (
            SELECT t.run_id, t.step_slug, bool_or(NOT t.started) AS any_queued
            FROM unnest(t_run, t_step, t_started) AS t(run_id, step_slug, started)
            GROUP BY t.run_id, t.step_slug
        ) AS q ON q.run_id = st.run_id AND q.step_slug = st.step_slug;
        PERFORM pgflow._emit_events(v_events, v_payloads, v_flows, v_for_workers);

        -- One send per queue, state and delay (usually one or two in all), messages in the
        -- tasks' order; the send returns ids in array order.
        FOR v_group IN
            SELECT DISTINCT t.flow_slug, t.started, t.delay
            FROM unnest(t_flow, t_started, t_delay) AS t(flow_slug, started, delay)
            ORDER BY 1, 2 DESC, 3
        LOOP
            WITH tasks AS (
                SELECT t.run_id, t.step_slug, t.task_index,
                       row_number() OVER (ORDER BY t.position) AS position
                FROM unnest(t_run, t_step, t_flow, t_index, t_started, t_delay)
                     WITH ORDINALITY AS t(run_id, step_slug, flow_slug, task_index, started, delay, position)
                WHERE t.flow_slug = v_group.flow_slug
                  AND t.started = v_group.started
                  AND t.delay = v_group.delay
            ),
            inserted AS (
                INSERT INTO pgflow.step_tasks AS nt (
                    flow_slug, run_id, step_slug, task_index, message_id,
                    status, attempts_count, started_at, last_worker_id
                )
                SELECT v_group.flow_slug, tk.run_id, tk.step_slug, tk.task_index, m.msg_id,
                       CASE WHEN v_group.started THEN 'started' ELSE 'queued' END,
                       CASE WHEN v_group.started THEN 1 ELSE 0 END,
                       CASE WHEN v_group.started THEN now() END,
                       CASE WHEN v_group.started THEN p_worker_id END
                FROM unnest(pgflow._on_queue(
                    v_group.flow_slug,
                    'send',
                    p_messages => ARRAY(
                        SELECT jsonb_build_object(
                            'flow_slug', v_group.flow_slug,
                            'run_id', tk.run_id,
                            'step_slug', tk.step_slug,
                            'task_index', tk.task_index
                        )
                        FROM tasks AS tk
                        ORDER BY tk.position
                    ),
                    p_seconds => v_group.delay
                )) WITH ORDINALITY AS m(msg_id, position)
                JOIN tasks AS tk ON tk.position = m.position
                RETURNING nt.message_id
            )
            SELECT v_started_messages || coalesce(array_agg(i.message_id), '{}')
            INTO v_started_messages
            FROM inserted AS i
            WHERE v_group.started;
        END LOOP;
    END IF;

    IF c_run IS NOT NULL THEN
        SELECT array_agg(c.run_id), array_agg(CASE WHEN c.run_id = ANY (v_cascade_runs) THEN 0 ELSE 1 END)
        INTO v_count_runs, v_count_steps
        FROM unnest(c_run) AS c(run_id);
        PERFORM pgflow._complete_finished_runs(v_count_runs, v_count_steps);
    END IF;

    FOREACH v_position IN ARRAY coalesce(v_one_by_one, '{}') LOOP
        PERFORM pgflow.complete_task(
            p_run_ids[v_position], p_step_slugs[v_position], p_task_indexes[v_position],
            p_outputs[v_position]
        );
    END LOOP;

    RETURN v_started_messages;
END;
$$;
