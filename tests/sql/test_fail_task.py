"""fail_task: retries with exponential visibility backoff, permanent failure, late calls."""

from __future__ import annotations

import pytest

from .conftest import Core, Listener, Realtime


def _vt(core: Core, flow: str, step: str, index: int = 0) -> float:
    (msg,) = [
        m
        for m in core.queue(flow)
        if m["message"]["step_slug"] == step and m["message"]["task_index"] == index
    ]
    return float(msg["vt_in"])


def test_retries_until_exhaustion_with_backoff(core: Core, realtime: Realtime) -> None:
    core.flow("f", [("a", [], {"start_delay": 100})], max_attempts=3, base_delay=2)
    run = core.start_flow("f", {})
    rid = run["run_id"]
    (msg_id,) = [m["msg_id"] for m in core.queue("f")]
    n_events = len(realtime.events())
    # base 2: the first retry waits 2*2^1 = 4 s, the second 2*2^2 = 8 s; start_delay never again
    for attempt, delay in ((1, 4), (2, 8)):
        core.make_visible("f")
        (task,) = core.poll("f")
        assert task["msg_id"] == msg_id
        (row,) = core.fail(rid, "a", 0, f"err {attempt}")
        assert (row["status"], row["attempts_count"], row["error_message"]) == (
            "queued",
            attempt,
            f"err {attempt}",
        )
        assert row["started_at"] is None
        assert row["failed_at"] is None
        assert delay - 1 < _vt(core, "f", "a") <= delay
        assert core.states(rid)["a"]["status"] == "started"
        assert core.run(rid)["status"] == "started"
    assert len(realtime.events()) == n_events  # retries are silent
    core.make_visible("f")
    core.poll("f")
    (row,) = core.fail(rid, "a", 0, "final")
    assert (row["status"], row["attempts_count"], row["error_message"]) == ("failed", 3, "final")
    assert row["failed_at"] is not None
    st = core.states(rid)["a"]
    assert (st["status"], st["error_message"]) == ("failed", "final")
    assert st["failed_at"] is not None
    r = core.run(rid)
    assert (r["status"], r["remaining_steps"]) == ("failed", 1)
    assert r["failed_at"] is not None
    assert r["completed_at"] is None
    assert core.queue("f") == []
    assert [m["msg_id"] for m in core.archive("f")] == [msg_id]


@pytest.mark.parametrize("max_attempts", [0, 1])
def test_zero_and_one_attempts_both_mean_a_single_try(core: Core, max_attempts: int) -> None:
    core.flow("f", [("a", [])], max_attempts=max_attempts)
    run = core.start_flow("f", {})
    core.poll("f")
    (row,) = core.fail(run["run_id"], "a", 0, "x")
    assert row["status"] == "failed"


def test_step_options_override_flow_options(core: Core) -> None:
    core.flow("f", [("a", [], {"max_attempts": 2, "base_delay": 3})], max_attempts=1, base_delay=50)
    run = core.start_flow("f", {})
    core.poll("f")
    (row,) = core.fail(run["run_id"], "a", 0, "x")
    assert row["status"] == "queued"
    assert 5 < _vt(core, "f", "a") <= 6


def test_permanent_failure_archives_every_message_of_the_run(
    core: Core, realtime: Realtime
) -> None:
    core.flow(
        "f", [("m", [], {"step_type": "map"}), ("other", []), ("later", ["other"])], max_attempts=1
    )
    core.flow("g", [("a", [])])
    other_run = core.start_flow("g", {})
    run = core.start_flow("f", [1, 2, 3])
    ids = core.read_ids("f", qty=2)
    core.start_tasks("f", ids)
    started = {
        (t["step_slug"], t["task_index"])
        for t in core.tasks(run["run_id"])
        if t["status"] == "started"
    }
    failing = sorted(started)[0]
    core.fail(run["run_id"], failing[0], failing[1], "boom")
    assert core.queue("f") == []
    assert len(core.archive("f")) == 4
    statuses = {(t["step_slug"], t["task_index"]): t["status"] for t in core.tasks(run["run_id"])}
    assert statuses.pop(failing) == "failed"
    assert sorted(set(statuses.values())) == ["queued", "started"]
    assert len(core.queue("g")) == 1, "other runs keep their messages"
    assert core.run(other_run["run_id"])["status"] == "started"
    events = realtime.events(run["run_id"])
    assert [e["event"] for e in events[-2:]] == [f"step:{failing[0]}:failed", "run:failed"]
    step_failed, run_failed = events[-2]["payload"], events[-1]["payload"]
    assert set(step_failed) - {"id"} == {
        "event_type",
        "run_id",
        "step_slug",
        "status",
        "error_message",
        "failed_at",
    }
    assert set(run_failed) - {"id"} == {
        "event_type",
        "run_id",
        "flow_slug",
        "status",
        "error_message",
        "failed_at",
    }
    assert (run_failed["status"], run_failed["error_message"], run_failed["flow_slug"]) == (
        "failed",
        "boom",
        "f",
    )
    assert (step_failed["status"], step_failed["error_message"]) == ("failed", "boom")


def test_late_fail_after_run_failed(core: Core, listener: Listener) -> None:
    core.flow("f", [("a", []), ("b", []), ("c", [])], max_attempts=3)
    run = core.start_flow("f", {})
    rid = run["run_id"]
    ids = core.read_ids("f", qty=2)
    core.start_tasks("f", ids)
    core.conn.execute("UPDATE pgflow.flows SET opt_max_attempts = 1")
    core.fail(rid, "a", 0, "first")
    listener.drain()
    # a started task of the failed run is marked failed, never retried
    (row,) = core.fail(rid, "b", 0, "second")
    assert (row["status"], row["error_message"]) == ("failed", "second")
    assert row["failed_at"] is not None
    assert core.states(rid)["b"]["status"] == "started"
    assert core.run(rid)["status"] == "failed"
    # a queued task stays queued
    (row,) = core.fail(rid, "c", 0, "third")
    assert (row["status"], row["error_message"]) == ("queued", None)
    assert core.queue("f") == []
    assert listener.drain() == []


def test_failing_a_queued_task_only_delays_its_message(core: Core) -> None:
    # Upstream 0.8.1 leaves the row alone but applies the backoff of the attempts so far.
    core.flow("f", [("a", [])], max_attempts=1, base_delay=3)
    run = core.start_flow("f", {})
    before = core.task(run["run_id"], "a")
    (row,) = core.fail(run["run_id"], "a", 0, "nope")
    assert row == before
    assert core.task(run["run_id"], "a") == before
    assert 2 < _vt(core, "f", "a") <= 3  # 3 * 2^0
    assert core.run(run["run_id"])["status"] == "started"
    assert core.states(run["run_id"])["a"]["status"] == "started"


def test_failing_a_finished_task_changes_nothing(core: Core) -> None:
    core.flow("f", [("a", []), ("b", [])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "b", 0, 1)
    done = core.task(run["run_id"], "b")
    (row,) = core.fail(run["run_id"], "b", 0, "nope")
    assert row == done
    assert core.task(run["run_id"], "b") == done
    assert core.run(run["run_id"])["status"] == "started"


def test_unknown_task(core: Core) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    assert core.fail(run["run_id"], "a", 9, "x") == []


def test_notifications_on_permanent_failure(core: Core, listener: Listener) -> None:
    core.flow("f", [("a", [])], max_attempts=1)
    run = core.start_flow("f", {})
    core.poll("f")
    listener.drain()
    core.fail(run["run_id"], "a", 0, "x" * 20000)
    rid = str(run["run_id"])
    assert listener.drain() == [
        {
            "event_type": "step:failed",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": "a",
            "status": "failed",
        },
        {
            "event_type": "run:failed",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": None,
            "status": "failed",
        },
    ]
