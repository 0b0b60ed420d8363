"""cancel_run: terminal state with a reason, messages archived, late reports are no-ops."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.sql.conftest import one, q

from .conftest import Core, Listener, Realtime, cancel, everything


def _half_done(core: Core) -> uuid.UUID:
    """a -> b -> d and c -> d: a completed, b queued, c running, d waiting."""
    core.flow("f", [("a", []), ("c", []), ("b", ["a"]), ("d", ["b", "c"])])
    rid: uuid.UUID = core.start_flow("f", {"n": 1})["run_id"]
    core.poll("f")
    core.complete(rid, "a", 0, {"a": 1})
    return rid


def test_cancels_unfinished_steps_and_tasks_and_archives_messages(
    core: Core, realtime: Realtime
) -> None:
    rid = _half_done(core)
    queued = [m["msg_id"] for m in core.queue("f")]
    assert len(queued) == 2  # b queued, c running (its message hidden, not gone)
    before = len(realtime.events(rid))

    run = cancel(core, rid, "operator said so")

    assert run["status"] == "cancelled"
    assert run["cancel_reason"] == "operator said so"
    assert run["cancelled_at"] is not None
    assert (run["failed_at"], run["completed_at"], run["output"]) == (None, None, None)
    assert run["remaining_steps"] == 3
    assert core.run(rid) == run
    assert {s: st["status"] for s, st in core.states(rid).items()} == {
        "a": "completed",
        "b": "cancelled",
        "c": "cancelled",
        "d": "cancelled",
    }
    tasks = {t["step_slug"]: t for t in core.tasks(rid)}
    assert {s: t["status"] for s, t in tasks.items()} == {
        "a": "completed",
        "b": "cancelled",
        "c": "cancelled",
    }
    assert tasks["a"]["output"] == {"a": 1}
    assert core.queue("f") == []
    assert set(queued) <= {m["msg_id"] for m in core.archive("f")}
    events = realtime.events(rid)[before:]
    assert [e["event"] for e in events] == [
        "step:c:cancelled",
        "step:b:cancelled",
        "step:d:cancelled",
        "run:cancelled",
    ]
    assert events[-1]["payload"]["cancel_reason"] == "operator said so"
    assert events[-1]["payload"]["status"] == "cancelled"
    assert events[0]["payload"]["status"] == "cancelled"


def test_notifies_listeners(core: Core, listener: Listener) -> None:
    rid = _half_done(core)
    listener.drain(0.2)
    cancel(core, rid)
    got = listener.drain()
    assert got[-1] == {
        "event_type": "run:cancelled",
        "run_id": str(rid),
        "flow_slug": "f",
        "step_slug": None,
        "status": "cancelled",
    }
    assert {n["step_slug"] for n in got[:-1]} == {"b", "c", "d"}


def test_reason_is_optional(core: Core) -> None:
    rid = _half_done(core)
    run = cancel(core, rid)
    assert (run["status"], run["cancel_reason"]) == ("cancelled", None)


def test_late_reports_of_workers_are_harmless(core: Core, realtime: Realtime) -> None:
    rid = _half_done(core)
    cancel(core, rid)
    before = everything(core, "f")
    n_events = len(realtime.events())

    (completed,) = core.complete(rid, "c", 0, {"late": True})
    (failed,) = core.fail(rid, "c", 0, "late failure")
    (queued_one,) = core.complete(rid, "b", 0, {"late": True})

    assert completed["status"] == failed["status"] == queued_one["status"] == "cancelled"
    assert completed["output"] is None
    assert everything(core, "f") == before
    assert len(realtime.events()) == n_events


def test_no_task_of_a_cancelled_run_starts(core: Core) -> None:
    rid = _half_done(core)
    core.make_visible("f")
    msg_ids = core.read_ids("f")  # a worker read the messages just before the cancel
    assert msg_ids
    cancel(core, rid)
    assert core.start_tasks("f", msg_ids) == []
    assert q(core.conn, "SELECT * FROM pgflow.claim_tasks('f', 10, 2, %s)", core.worker_id) == []
    before = everything(core, "f")
    core.conn.execute("SELECT pgflow.start_ready_steps(%s)", (rid,))
    core.conn.execute("SELECT pgflow.maybe_complete_run(%s)", (rid,))
    assert everything(core, "f") == before


def test_stalled_task_recovery_ignores_cancelled_runs(core: Core) -> None:
    rid = _half_done(core)
    cancel(core, rid)
    # cancel_run leaves no task started; force one back to see the guard on the run itself.
    core.conn.execute(
        "UPDATE pgflow.step_tasks SET status = 'started', queued_at = now() - interval '1 day',"
        " started_at = now() - interval '1 day' WHERE step_slug = 'c'"
    )
    assert q(core.conn, "SELECT * FROM pgflow.recover_stalled_tasks('0 seconds', 3)") == []
    assert core.run(rid)["status"] == "cancelled"


def test_a_started_map_step_is_cancelled_with_all_its_tasks(core: Core) -> None:
    core.flow("m", [("items", [], {"step_type": "map"})])
    rid = core.start_flow("m", [1, 2, 3])["run_id"]
    (first, *_rest) = core.poll("m", qty=1)
    core.complete(rid, "items", first["task_index"], 10)
    cancel(core, rid)
    assert [t["status"] for t in core.tasks(rid)] == ["completed", "cancelled", "cancelled"]
    state = core.states(rid)["items"]
    assert (state["status"], state["remaining_tasks"]) == ("cancelled", 2)
    assert core.queue("m") == []


@pytest.mark.parametrize("finish", ["completed", "failed", "cancelled"])
def test_refuses_a_finished_run_and_changes_nothing(core: Core, finish: str) -> None:
    core.flow("f", [("a", [])], max_attempts=1)
    rid = core.start_flow("f", {})["run_id"]
    core.poll("f")
    if finish == "completed":
        core.complete(rid, "a", 0, 1)
    elif finish == "failed":
        core.fail(rid, "a", 0, "boom")
    else:
        cancel(core, rid)
    before = everything(core, "f")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        core.conn.execute("SELECT * FROM pgflow.cancel_run(%s, 'again')", (rid,))
    assert str(info.value).startswith(
        f"run {rid} is already {finish}: only a started run can be cancelled"
    )
    assert everything(core, "f") == before


def test_refuses_an_unknown_run(core: Core) -> None:
    core.flow("f", [("a", [])])
    core.start_flow("f", {})
    before = everything(core, "f")
    missing = uuid.uuid4()
    with pytest.raises(psycopg.errors.NoDataFound, match=f"run {missing} does not exist"):
        core.conn.execute("SELECT * FROM pgflow.cancel_run(%s)", (missing,))
    assert everything(core, "f") == before


def test_cancelled_runs_are_pruned_like_finished_ones(core: Core) -> None:
    rid = _half_done(core)
    cancel(core, rid)
    kept = one(core.conn, "SELECT * FROM pgflow.prune_runs('1 hour')")
    assert kept["runs"] == 0
    core.conn.execute(
        "UPDATE pgflow.runs SET started_at = started_at - interval '2 hours',"
        " cancelled_at = cancelled_at - interval '1 hour 30 minutes' WHERE run_id = %s",
        (rid,),
    )
    pruned = one(core.conn, "SELECT * FROM pgflow.prune_runs('1 hour')")
    assert (pruned["runs"], pruned["step_states"], pruned["step_tasks"]) == (1, 4, 3)


def test_a_cancelled_run_needs_its_cancellation_time(core: Core) -> None:
    core.flow("f", [("a", [])])
    rid = core.start_flow("f", {})["run_id"]
    with pytest.raises(psycopg.errors.CheckViolation, match="cancelled_at_only_when_cancelled"):
        core.conn.execute("UPDATE pgflow.runs SET status = 'cancelled' WHERE run_id = %s", (rid,))
