"""Run control against reports in flight: two connections, one holding its transaction open
while the other waits for the run's lock (the lock order makes them queue, never deadlock)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.sql.conftest import q

from .conftest import Background, Conn, Core, cancel, resume, wait_until_blocked

CANCEL = "SELECT * FROM pgflow.cancel_run(%s, 'race')"
COMPLETE = "SELECT * FROM pgflow.complete_task(%s, %s, 0, '\"done\"'::jsonb)"
FAIL = "SELECT * FROM pgflow.fail_task(%s, %s, 0, 'late failure')"


def _in_background(url: str, query: str, *params: object) -> Background:
    return Background(url, lambda conn: q(conn, query, *params))


def _started(core: Core, steps: list[tuple[str, list[str]]]) -> uuid.UUID:
    core.flow("f", steps, max_attempts=1)
    rid: uuid.UUID = core.start_flow("f", {})["run_id"]
    core.poll("f")
    return rid


def test_cancel_waits_for_a_completion_in_progress_then_cancels_what_it_started(
    core: Core, second_conn: Conn, pgflow_database_url: str
) -> None:
    rid = _started(core, [("a", []), ("b", ["a"])])
    q(second_conn, COMPLETE, rid, "a")  # its transaction stays open, holding the run's lock
    canceller = _in_background(pgflow_database_url, CANCEL, rid)
    wait_until_blocked(core.conn, canceller.pid)

    second_conn.commit()
    (run,) = canceller.join()

    assert run["status"] == "cancelled"
    assert core.task(rid, "a")["output"] == "done"
    assert {s: st["status"] for s, st in core.states(rid).items()} == {
        "a": "completed",
        "b": "cancelled",
    }
    assert core.task(rid, "b")["status"] == "cancelled"  # queued by the completion
    assert core.queue("f") == []


def test_cancel_refuses_a_run_that_the_completion_in_progress_finished(
    core: Core, second_conn: Conn, pgflow_database_url: str
) -> None:
    rid = _started(core, [("a", [])])
    q(second_conn, COMPLETE, rid, "a")
    canceller = _in_background(pgflow_database_url, CANCEL, rid)
    wait_until_blocked(core.conn, canceller.pid)

    second_conn.commit()
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="already completed"):
        canceller.join()
    run = core.run(rid)
    assert (run["status"], run["output"], run["cancel_reason"]) == (
        "completed",
        {"a": "done"},
        None,
    )


@pytest.mark.parametrize("report", [COMPLETE, FAIL])
def test_a_report_waiting_for_a_cancel_in_progress_changes_nothing(
    core: Core, second_conn: Conn, pgflow_database_url: str, report: str
) -> None:
    rid = _started(core, [("a", []), ("b", ["a"])])
    q(second_conn, CANCEL, rid)
    reporter = _in_background(pgflow_database_url, report, rid, "a")
    wait_until_blocked(core.conn, reporter.pid)

    second_conn.commit()
    (row,) = reporter.join()

    assert (row["status"], row["output"], row["error_message"]) == ("cancelled", None, None)
    assert core.run(rid)["status"] == "cancelled"
    assert core.states(rid)["a"]["status"] == "cancelled"
    assert core.tasks(rid, "b") == []
    assert core.queue("f") == []


def _failed_with_old_worker(core: Core) -> uuid.UUID:
    """bad fails the run while an old worker still holds slow."""
    rid = _started(core, [("bad", []), ("slow", [])])
    core.fail(rid, "bad", 0, "boom")
    return rid


def test_a_late_report_waiting_for_a_resume_in_progress_leaves_the_new_attempt(
    core: Core, second_conn: Conn, pgflow_database_url: str
) -> None:
    rid = _failed_with_old_worker(core)
    q(second_conn, "SELECT * FROM pgflow.resume_run(%s)", rid)
    reporter = _in_background(pgflow_database_url, COMPLETE, rid, "slow")
    wait_until_blocked(core.conn, reporter.pid)

    second_conn.commit()
    (row,) = reporter.join()

    assert (row["status"], row["output"], row["attempts_count"]) == ("queued", None, 0)
    state = core.states(rid)["slow"]
    assert (state["status"], state["remaining_tasks"]) == ("started", 1)
    assert core.run(rid)["remaining_steps"] == 2
    assert len(core.queue("f")) == 2


def test_a_resume_waiting_for_a_late_report_in_progress_starts_over_cleanly(
    core: Core, second_conn: Conn, pgflow_database_url: str
) -> None:
    rid = _failed_with_old_worker(core)
    q(second_conn, FAIL, rid, "slow")  # on the failed run: recorded, no retry
    resumer = _in_background(pgflow_database_url, "SELECT * FROM pgflow.resume_run(%s)", rid)
    wait_until_blocked(core.conn, resumer.pid)

    second_conn.commit()
    (run,) = resumer.join()

    assert (run["status"], run["remaining_steps"], run["resumed_count"]) == ("started", 2, 1)
    assert {t["step_slug"]: (t["status"], t["error_message"]) for t in core.tasks(rid)} == {
        "bad": ("queued", None),
        "slow": ("queued", None),
    }
    core.run_until_done("f", lambda task: task["step_slug"])
    assert core.run(rid)["output"] == {"bad": "bad", "slow": "slow"}


def test_cancel_and_resume_of_one_run_queue_up(
    core: Core, second_conn: Conn, pgflow_database_url: str
) -> None:
    rid = _started(core, [("a", [])])
    cancel(core, rid)
    q(second_conn, "SELECT * FROM pgflow.resume_run(%s)", rid)
    canceller = _in_background(pgflow_database_url, CANCEL, rid)
    wait_until_blocked(core.conn, canceller.pid)

    second_conn.commit()
    (run,) = canceller.join()

    assert (run["status"], run["resumed_count"], run["cancel_reason"]) == ("cancelled", 1, "race")
    resume(core, rid)
    assert core.run(rid)["resumed_count"] == 2
