"""retry_run: a new run of the same flow and input, linked to the failed or cancelled one."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from .conftest import Core, Realtime, cancel, everything, retry


def _failed_run(core: Core) -> uuid.UUID:
    core.flow("f", [("a", []), ("b", ["a"])], max_attempts=1)
    rid: uuid.UUID = core.start_flow("f", {"n": 7})["run_id"]
    core.poll("f")
    core.complete(rid, "a", 0, "a-out")
    core.poll("f")
    core.fail(rid, "b", 0, "boom")
    assert core.run(rid)["status"] == "failed"
    return rid


def test_starts_a_new_run_linked_to_the_failed_one(core: Core, realtime: Realtime) -> None:
    rid = _failed_run(core)
    original = everything(core, "f")

    new = retry(core, rid)

    assert new["run_id"] != rid
    assert (new["flow_slug"], new["input"], new["status"]) == ("f", {"n": 7}, "started")
    assert (new["retry_of"], new["remaining_steps"], new["resumed_count"]) == (rid, 2, 0)
    assert core.run(new["run_id"]) == new
    # The original is kept as it was.
    assert core.run(rid) == next(r for r in original["runs"] if r["run_id"] == rid)
    assert {s: st["status"] for s, st in core.states(new["run_id"]).items()} == {
        "a": "started",
        "b": "created",
    }
    assert [m["message"]["run_id"] for m in core.queue("f")] == [str(new["run_id"])]
    assert realtime.names(new["run_id"]) == ["run:started", "step:a:started"]
    # It runs like any other.
    core.run_until_done("f", lambda task: task["step_slug"])
    assert core.run(new["run_id"])["output"] == {"b": "b"}


def test_retries_a_cancelled_run_and_may_retry_again(core: Core) -> None:
    core.flow("f", [("a", [])])
    rid = core.start_flow("f", [1])["run_id"]
    cancel(core, rid, "oops")
    first = retry(core, rid)
    second = retry(core, rid)
    assert first["retry_of"] == second["retry_of"] == rid
    assert first["run_id"] != second["run_id"]
    assert core.run(rid)["status"] == "cancelled"


def test_a_run_without_tasks_completes_at_once(core: Core) -> None:
    core.flow("m", [("each", [], {"step_type": "map"})])
    rid = core.start_flow("m", [])["run_id"]
    # Such a run cannot fail; made to look failed, it shows the link survives a retry that
    # start_flow completes within the same call.
    core.conn.execute(
        "UPDATE pgflow.runs SET status = 'failed', failed_at = completed_at, completed_at = NULL,"
        " output = NULL WHERE run_id = %s",
        (rid,),
    )
    new = retry(core, rid)
    assert (new["status"], new["retry_of"], new["output"]) == ("completed", rid, {"each": []})


@pytest.mark.parametrize("state", ["started", "completed"])
def test_refuses_a_run_that_did_not_fail_and_changes_nothing(core: Core, state: str) -> None:
    core.flow("f", [("a", [])])
    rid = core.start_flow("f", {})["run_id"]
    if state == "completed":
        core.run_until_done("f", lambda task: 1)
    before = everything(core, "f")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        core.conn.execute("SELECT * FROM pgflow.retry_run(%s)", (rid,))
    assert str(info.value).startswith(
        f"run {rid} is {state}: only a failed or cancelled run can be retried"
    )
    assert everything(core, "f") == before


def test_refuses_an_unknown_run(core: Core) -> None:
    core.flow("f", [("a", [])])
    before = everything(core, "f")
    missing = uuid.uuid4()
    with pytest.raises(psycopg.errors.NoDataFound, match=f"run {missing} does not exist"):
        core.conn.execute("SELECT * FROM pgflow.retry_run(%s)", (missing,))
    assert everything(core, "f") == before
