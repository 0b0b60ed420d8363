"""prune_data_older_than: deleting finished runs, dead workers and old archive rows."""

from __future__ import annotations

import uuid

from .conftest import Core, q


def _age(core: Core, run_id: uuid.UUID, days: int) -> None:
    core.conn.execute(
        """
        UPDATE pgflow.runs SET started_at = started_at - make_interval(days => %(d)s),
            completed_at = completed_at - make_interval(days => %(d)s),
            failed_at = failed_at - make_interval(days => %(d)s)
        WHERE run_id = %(r)s
        """,
        {"d": days, "r": run_id},
    )


def test_prunes_old_finished_runs_only(core: Core) -> None:
    core.flow("f", [("a", []), ("b", [])], max_attempts=1)
    done = core.start_flow("f", {})
    core.run_until_done("f", lambda t: 1)
    failed = core.start_flow("f", {})
    ids = core.read_ids("f", qty=1)
    core.start_tasks("f", ids)
    failing = core.tasks(failed["run_id"])
    started = next(t for t in failing if t["status"] == "started")
    core.fail(failed["run_id"], started["step_slug"], 0, "x")
    running = core.start_flow("f", {})
    recent = core.start_flow("f", {})
    for run in (done, failed, running):
        _age(core, run["run_id"], 30)
    # a message of a pruned run that is still in the queue would never be claimed again
    queued_of_failed = next(t for t in core.tasks(failed["run_id"]) if t["status"] == "queued")
    core.conn.execute("SELECT pgmq.send('f', '{\"orphan\": true}')")
    core.conn.execute(
        "UPDATE pgflow.step_tasks SET message_id = (SELECT max(msg_id) FROM pgmq.q_f)"
        " WHERE run_id = %s AND step_slug = %s",
        (failed["run_id"], queued_of_failed["step_slug"]),
    )
    core.conn.execute("UPDATE pgmq.a_f SET archived_at = archived_at - interval '30 days'")
    core.conn.execute("SELECT pgmq.send('f', '{\"fresh\": true}')")
    fresh_id = max(m["msg_id"] for m in core.queue("f"))
    core.conn.execute("SELECT pgmq.archive('f', %s::bigint)", (fresh_id,))

    core.conn.execute("SELECT pgflow.prune_data_older_than(interval '7 days')")

    remaining = {r["run_id"] for r in q(core.conn, "SELECT run_id FROM pgflow.runs")}
    assert remaining == {running["run_id"], recent["run_id"]}
    for table in ("step_states", "step_tasks"):
        left = {r["run_id"] for r in q(core.conn, f"SELECT DISTINCT run_id FROM pgflow.{table}")}
        assert left == remaining
    assert all(m["message"].get("orphan") is None for m in core.queue("f"))
    assert [m["msg_id"] for m in core.archive("f")] == [fresh_id]


def test_prunes_dead_workers_and_keeps_task_history(core: Core) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, 1)
    alive = uuid.uuid4()
    core.conn.execute(
        "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) VALUES (%s, 'f', 'fn')",
        (alive,),
    )
    core.conn.execute(
        "UPDATE pgflow.workers SET last_heartbeat_at = now() - interval '2 days'"
        " WHERE worker_id = %s",
        (core.worker_id,),
    )
    core.conn.execute("SELECT pgflow.prune_data_older_than(interval '1 day')")
    assert [r["worker_id"] for r in q(core.conn, "SELECT worker_id FROM pgflow.workers")] == [alive]
    assert core.task(run["run_id"], "a")["last_worker_id"] is None


def test_returns_void_and_tolerates_dropped_queue(core: Core) -> None:
    core.flow("f", [("a", [])])
    core.conn.execute("SELECT pgmq.drop_queue('f')")
    rows = q(core.conn, "SELECT pgflow.prune_data_older_than(interval '0 seconds') AS r")
    assert len(rows) == 1  # void
