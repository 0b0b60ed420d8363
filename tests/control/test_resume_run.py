"""resume_run: the same run continues; completed steps are kept, the rest starts over."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from .conftest import Core, Realtime, cancel, everything, resume


def _failed_chain(core: Core) -> uuid.UUID:
    """a -> b -> c with b out of attempts: a completed, b failed, c never started."""
    core.flow("f", [("a", []), ("b", ["a"]), ("c", ["b"])], max_attempts=1)
    rid: uuid.UUID = core.start_flow("f", {"n": 1})["run_id"]
    core.poll("f")
    core.complete(rid, "a", 0, "a-out")
    core.poll("f")
    core.fail(rid, "b", 0, "boom")
    assert core.run(rid)["status"] == "failed"
    return rid


def test_keeps_completed_steps_and_starts_the_rest_over(core: Core, realtime: Realtime) -> None:
    rid = _failed_chain(core)
    kept_a = core.task(rid, "a")
    old_b = core.task(rid, "b")
    n_events = len(realtime.events(rid))

    run = resume(core, rid)

    assert (run["run_id"], run["status"], run["remaining_steps"]) == (rid, "started", 2)
    assert (run["failed_at"], run["output"], run["resumed_count"]) == (None, None, 1)
    assert run["resumed_at"] is not None
    assert core.task(rid, "a") == kept_a
    states = core.states(rid)
    assert states["a"]["status"] == "completed"
    b = states["b"]
    assert (b["status"], b["remaining_tasks"], b["initial_tasks"], b["remaining_deps"]) == (
        "started",
        1,
        1,
        0,
    )
    assert (b["error_message"], b["failed_at"]) == (None, None)
    c = states["c"]
    assert (c["status"], c["remaining_deps"], c["initial_tasks"]) == ("created", 1, 1)
    new_b = core.task(rid, "b")
    assert (new_b["status"], new_b["attempts_count"], new_b["error_message"]) == ("queued", 0, None)
    assert new_b["message_id"] != old_b["message_id"]
    assert [m["msg_id"] for m in core.queue("f")] == [new_b["message_id"]]
    assert realtime.names(rid)[n_events:] == ["run:resumed", "step:b:started"]

    calls: list[str] = []

    def handler(task: dict[str, Any]) -> Any:
        calls.append(task["step_slug"])
        return {"saw": task["input"]}

    core.run_until_done("f", handler)
    assert calls == ["b", "c"]  # a is not run again
    final = core.run(rid)
    assert (final["status"], final["remaining_steps"]) == ("completed", 0)
    assert final["output"]["c"]["saw"]["b"] == {"saw": {"run": {"n": 1}, "a": "a-out"}}


def test_resumes_a_cancelled_run_with_a_partly_done_map(core: Core) -> None:
    core.flow(
        "f",
        [
            ("list", []),
            ("each", ["list"], {"step_type": "map"}),
            ("other", []),
            ("sum", ["each", "other"]),
        ],
    )
    rid = core.start_flow("f", {})["run_id"]
    core.poll("f")  # list and other
    core.complete(rid, "list", 0, [1, 2, 3])
    core.complete(rid, "other", 0, "o")
    (first, *_rest) = core.poll("f", qty=1)
    core.complete(rid, "each", first["task_index"], 10)
    cancel(core, rid, "pause")

    run = resume(core, rid)

    assert (run["status"], run["cancelled_at"], run["cancel_reason"]) == ("started", None, None)
    assert run["remaining_steps"] == 2
    states = core.states(rid)
    # The whole map step starts over: its width comes from the kept output of its parent.
    assert (states["each"]["status"], states["each"]["initial_tasks"]) == ("started", 3)
    assert [t["status"] for t in core.tasks(rid, "each")] == ["queued"] * 3
    assert (states["sum"]["status"], states["sum"]["remaining_deps"]) == ("created", 1)
    core.run_until_done(
        "f", lambda task: task["input"] * 2 if task["step_slug"] == "each" else task["input"]
    )
    assert core.run(rid)["output"]["sum"] == {"run": {}, "each": [2, 4, 6], "other": "o"}


def test_a_branch_that_was_still_running_starts_over_too(core: Core) -> None:
    core.flow("f", [("bad", []), ("slow", [])], max_attempts=1)
    rid = core.start_flow("f", {})["run_id"]
    core.poll("f")
    core.fail(rid, "bad", 0, "boom")
    assert core.states(rid)["slow"]["status"] == "started"  # a failed run leaves it so

    resume(core, rid)

    assert {t["step_slug"]: t["status"] for t in core.tasks(rid)} == {
        "bad": "queued",
        "slow": "queued",
    }
    assert len(core.queue("f")) == 2


def test_a_map_child_of_an_empty_array_completes_on_resume(core: Core) -> None:
    core.flow("f", [("list", []), ("each", ["list"], {"step_type": "map"}), ("x", [])])
    rid = core.start_flow("f", {})["run_id"]
    core.poll("f")
    core.complete(rid, "list", 0, [])  # each completes at once, taskless
    cancel(core, rid)
    run = resume(core, rid)
    states = core.states(rid)
    assert states["each"]["status"] == "completed"
    assert states["x"]["status"] == "started"
    assert run["remaining_steps"] == 1


def test_a_run_may_be_resumed_again(core: Core) -> None:
    rid = _failed_chain(core)
    resume(core, rid)
    core.poll("f")
    core.fail(rid, "b", 0, "boom again")
    assert core.run(rid)["status"] == "failed"
    run = resume(core, rid)
    assert (run["status"], run["resumed_count"]) == ("started", 2)


@pytest.mark.parametrize("state", ["started", "completed"])
def test_refuses_a_run_that_did_not_stop_and_changes_nothing(core: Core, state: str) -> None:
    core.flow("f", [("a", [])])
    rid = core.start_flow("f", {})["run_id"]
    if state == "completed":
        core.run_until_done("f", lambda task: 1)
    before = everything(core, "f")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        core.conn.execute("SELECT * FROM pgflow.resume_run(%s)", (rid,))
    assert str(info.value).startswith(
        f"run {rid} is {state}: only a failed or cancelled run can be resumed"
    )
    assert everything(core, "f") == before


def test_refuses_an_unknown_run(core: Core) -> None:
    core.flow("f", [("a", [])])
    before = everything(core, "f")
    missing = uuid.uuid4()
    with pytest.raises(psycopg.errors.NoDataFound, match=f"run {missing} does not exist"):
        core.conn.execute("SELECT * FROM pgflow.resume_run(%s)", (missing,))
    assert everything(core, "f") == before


# -- a worker from before the resume reports late ---------------------------------------------


def _resumed_with_a_late_worker(core: Core) -> uuid.UUID:
    """slow and bad run in parallel; bad fails the run while slow is still being worked on by
    an old worker; then the run is resumed."""
    core.flow("f", [("bad", []), ("slow", []), ("after", ["slow"])], max_attempts=2, base_delay=7)
    rid: uuid.UUID = core.start_flow("f", {})["run_id"]
    core.poll("f")
    core.fail(rid, "bad", 0, "boom")
    core.make_visible("f")
    core.poll("f")
    core.fail(rid, "bad", 0, "boom")
    assert core.run(rid)["status"] == "failed"
    resume(core, rid)
    return rid


def test_a_late_completion_leaves_the_queued_new_attempt_alone(
    core: Core, realtime: Realtime
) -> None:
    rid = _resumed_with_a_late_worker(core)
    before = everything(core, "f")
    n_events = len(realtime.events())

    (row,) = core.complete(rid, "slow", 0, "stale")

    assert (row["status"], row["output"]) == ("queued", None)
    assert everything(core, "f") == before
    assert len(realtime.events()) == n_events
    # The new attempt then runs and counts once.
    core.run_until_done("f", lambda task: task["step_slug"])
    assert core.task(rid, "slow")["output"] == "slow"
    run = core.run(rid)
    assert (run["status"], run["remaining_steps"]) == ("completed", 0)


def test_a_late_failure_only_defers_the_queued_new_attempt(core: Core) -> None:
    rid = _resumed_with_a_late_worker(core)
    before = core.task(rid, "slow")

    (row,) = core.fail(rid, "slow", 0, "stale failure")

    assert row == before  # status, attempts and error untouched
    (msg,) = [m for m in core.queue("f") if m["msg_id"] == before["message_id"]]
    assert 6 < msg["vt_in"] <= 7  # 0.8.1's rule for a queued task: the first retry delay
    assert core.states(rid)["slow"]["remaining_tasks"] == 1
    assert core.run(rid)["status"] == "started"


def test_a_late_completion_after_the_new_attempt_started_counts_once(core: Core) -> None:
    rid = _resumed_with_a_late_worker(core)
    core.make_visible("f")
    assert {t["step_slug"] for t in core.poll("f")} == {"bad", "slow"}

    (late,) = core.complete(rid, "slow", 0, "from the old worker")
    (new,) = core.complete(rid, "slow", 0, "from the new worker")

    # The first report settles the task; the second is the usual no-op on a completed task.
    assert late["status"] == new["status"] == "completed"
    assert core.task(rid, "slow")["output"] == "from the old worker"
    state = core.states(rid)["slow"]
    assert (state["status"], state["remaining_tasks"]) == ("completed", 0)
    assert core.states(rid)["after"]["remaining_deps"] == 0
    assert core.run(rid)["remaining_steps"] == 2  # bad and after
    assert len(core.tasks(rid, "after")) == 1
