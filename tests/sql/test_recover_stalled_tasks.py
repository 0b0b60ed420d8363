"""recover_stalled_tasks: tasks of dead workers go back to the queue, then fail if it repeats."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from .conftest import Core, q


def _backdate(core: Core, run_id: Any, step: str, seconds: int) -> None:
    core.conn.execute(
        "UPDATE pgflow.step_tasks SET started_at = now() - make_interval(secs => %s), "
        "queued_at = now() - make_interval(secs => %s + 1) "
        "WHERE run_id = %s AND step_slug = %s",
        (seconds, seconds, run_id, step),
    )


def _recover(core: Core, margin: int = 30, max_requeues: int = 3) -> list[dict[str, Any]]:
    return q(
        core.conn,
        "SELECT * FROM pgflow.recover_stalled_tasks(make_interval(secs => %s), %s)",
        margin,
        max_requeues,
    )


def test_a_stalled_task_is_requeued_without_counting_the_attempt(core: Core) -> None:
    core.flow("stall", [("a", [])], timeout=10)
    run = core.start_flow("stall", {})
    (task,) = core.poll("stall")
    _backdate(core, run["run_id"], "a", 39)
    assert _recover(core) == []  # 39 s < timeout 10 s + margin 30 s
    _backdate(core, run["run_id"], "a", 41)

    assert _recover(core) == [
        {"run_id": run["run_id"], "step_slug": "a", "task_index": 0, "action": "requeued"}
    ]
    row = core.task(run["run_id"], "a")
    assert row["status"] == "queued"
    assert row["started_at"] is None
    assert row["attempts_count"] == 0
    assert row["requeued_count"] == 1
    assert row["last_requeued_at"] is not None
    (message,) = core.queue("stall")
    assert message["vt_in"] <= 0.5  # visible again at once

    (again,) = core.poll("stall")
    assert again["msg_id"] == task["msg_id"]
    core.complete(run["run_id"], "a", 0, "done")
    assert core.run(run["run_id"])["status"] == "completed"


def test_the_step_timeout_counts_not_the_flow_timeout(core: Core) -> None:
    core.flow("steptimeout", [("a", [], {"timeout": 100})], timeout=5)
    run = core.start_flow("steptimeout", {})
    core.poll("steptimeout")
    _backdate(core, run["run_id"], "a", 60)
    assert _recover(core) == []
    _backdate(core, run["run_id"], "a", 131)
    assert [r["action"] for r in _recover(core)] == ["requeued"]


def test_after_max_requeues_the_task_is_failed(core: Core) -> None:
    core.flow("poison", [("a", [])], timeout=5, max_attempts=1)
    run = core.start_flow("poison", {})
    for expected in ("requeued", "requeued", "failed"):
        core.poll("poison")
        _backdate(core, run["run_id"], "a", 100)
        assert [r["action"] for r in _recover(core, max_requeues=2)] == [expected]
    row = core.task(run["run_id"], "a")
    assert row["status"] == "failed"
    assert row["error_message"] == (
        "Stalled: no result within the step timeout (5 s) plus 00:00:30; the worker running it "
        "stopped reporting (already requeued 2 times)"
    )
    assert core.run(run["run_id"])["status"] == "failed"


def test_tasks_of_failed_runs_and_live_tasks_are_left_alone(core: Core) -> None:
    core.flow("mixed", [("a", []), ("b", [])], timeout=5, max_attempts=1)
    run = core.start_flow("mixed", {})
    core.poll("mixed")
    core.fail(run["run_id"], "a", 0, "boom")  # the run fails; b stays 'started'
    _backdate(core, run["run_id"], "b", 100)
    assert _recover(core) == []
    assert core.task(run["run_id"], "b")["status"] == "started"


def test_one_recoverer_at_a_time(core: Core, pgflow_database_url: str) -> None:
    core.flow("solo", [("a", [])], timeout=5)
    run = core.start_flow("solo", {})
    core.poll("solo")
    _backdate(core, run["run_id"], "a", 100)
    with psycopg.connect(pgflow_database_url) as holder:
        # Another recoverer is mid-way (holds the lock in its transaction): this call skips.
        holder.execute("SELECT pg_advisory_xact_lock(8091040203364468)")
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.extend(_recover(core)))
        thread.start()
        thread.join(10)
        assert result == []
    assert [r["action"] for r in _recover(core)] == ["requeued"]
