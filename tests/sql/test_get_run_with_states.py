"""get_run_with_states: one JSON snapshot of a run and its step states."""

from __future__ import annotations

import uuid

from .conftest import Core, scalar


def test_snapshot(core: Core) -> None:
    core.flow("f", [("a", []), ("b", ["a"])])
    run = core.start_flow("f", {"x": 1})
    snap = scalar(core.conn, "SELECT pgflow.get_run_with_states(%s) AS s", run["run_id"])
    assert set(snap) == {"run", "steps"}
    assert snap["run"]["run_id"] == str(run["run_id"])
    assert set(snap["run"]) == {
        "run_id",
        "flow_slug",
        "status",
        "input",
        "output",
        "remaining_steps",
        "started_at",
        "completed_at",
        "failed_at",
    }
    assert (snap["run"]["status"], snap["run"]["input"], snap["run"]["remaining_steps"]) == (
        "started",
        {"x": 1},
        2,
    )
    assert [s["step_slug"] for s in snap["steps"]] == ["a", "b"]
    assert set(snap["steps"][0]) == {
        "flow_slug",
        "run_id",
        "step_slug",
        "status",
        "remaining_tasks",
        "initial_tasks",
        "remaining_deps",
        "error_message",
        "created_at",
        "started_at",
        "completed_at",
        "failed_at",
    }
    assert snap["steps"][0]["status"] == "started"


def test_unknown_run_is_null(core: Core) -> None:
    assert scalar(core.conn, "SELECT pgflow.get_run_with_states(%s) AS s", uuid.uuid4()) is None


def test_run_without_steps_has_empty_list(core: Core) -> None:
    core.create_flow("f")
    run = core.start_flow("f", {})
    snap = scalar(core.conn, "SELECT pgflow.get_run_with_states(%s) AS s", run["run_id"])
    assert snap["steps"] == []
    assert snap["run"]["status"] == "completed"
