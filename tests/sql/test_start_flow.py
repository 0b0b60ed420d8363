"""start_flow: creating a run, its step states, its first messages."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from .conftest import Core, Realtime, q


def test_run_and_step_states(core: Core) -> None:
    core.flow("f", [("a", []), ("b", ["a"]), ("m", ["a"], {"step_type": "map"}), ("c", ["b", "m"])])
    run = core.start_flow("f", {"x": 1})
    assert run["status"] == "started"
    assert run["input"] == {"x": 1}
    assert run["remaining_steps"] == 4
    assert run["output"] is None
    states = core.states(run["run_id"])
    summary = {
        s: (st["status"], st["remaining_deps"], st["initial_tasks"], st["remaining_tasks"])
        for s, st in states.items()
    }
    assert summary == {
        "a": ("started", 0, 1, 1),
        "b": ("created", 1, 1, None),
        "m": ("created", 1, None, None),
        "c": ("created", 2, 1, None),
    }


def test_root_step_message_and_task(core: Core) -> None:
    core.flow("f", [("a", []), ("b", [])])
    run = core.start_flow("f", {"x": 1})
    tasks = core.tasks(run["run_id"])
    msgs = core.queue("f")
    assert [(t["step_slug"], t["task_index"], t["status"], t["attempts_count"]) for t in tasks] == [
        ("a", 0, "queued", 0),
        ("b", 0, "queued", 0),
    ]
    by_id = {m["msg_id"]: m["message"] for m in msgs}
    for t in tasks:
        assert by_id[t["message_id"]] == {
            "flow_slug": "f",
            "run_id": str(run["run_id"]),
            "step_slug": t["step_slug"],
            "task_index": 0,
        }


def test_given_run_id_is_used(core: Core) -> None:
    core.flow("f", [("a", [])])
    run_id = uuid.uuid4()
    assert core.start_flow("f", {}, run_id)["run_id"] == run_id


def test_root_map_fans_out_over_input(core: Core) -> None:
    core.flow("f", [("m", [], {"step_type": "map"})])
    run = core.start_flow("f", ["a", "b", "c"])
    st = core.states(run["run_id"])["m"]
    assert (st["status"], st["initial_tasks"], st["remaining_tasks"]) == ("started", 3, 3)
    msgs = core.queue("f")
    assert [m["message"]["task_index"] for m in msgs] == [0, 1, 2]
    tasks = core.tasks(run["run_id"])
    assert [t["message_id"] for t in tasks] == [m["msg_id"] for m in msgs]


def test_root_map_input_must_be_an_array(core: Core) -> None:
    core.flow("f", [("m", [], {"step_type": "map"})])
    with pytest.raises(
        psycopg.errors.RaiseException,
        match=r"^Flow f has root map steps but input is not an array \(got object\)",
    ):
        core.start_flow("f", {"a": 1})
    with pytest.raises(
        psycopg.errors.RaiseException,
        match=r"^Flow f has root map steps but input is not an array \(got null\)",
    ):
        core.conn.execute("SELECT pgflow.start_flow('f', 'null'::jsonb)")
    with pytest.raises(
        psycopg.errors.RaiseException, match=r"^Flow f has root map steps but input is NULL"
    ):
        core.start_flow("f", None)
    assert q(core.conn, "SELECT * FROM pgflow.runs") == []


def test_input_is_required_without_root_map(core: Core) -> None:
    core.flow("f", [("a", [])])
    with pytest.raises(psycopg.errors.NotNullViolation):
        core.start_flow("f", None)


def test_unknown_flow_is_a_fk_error(core: Core) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="runs_flow_slug_fkey"):
        core.start_flow("nope", {})


def test_empty_root_map_completes_the_run_inside_start_flow(core: Core, realtime: Realtime) -> None:
    core.flow("f", [("m", [], {"step_type": "map"})])
    run = core.start_flow("f", [])
    assert run["status"] == "completed"
    assert run["remaining_steps"] == 0
    assert run["output"] == {"m": []}
    st = core.states(run["run_id"])["m"]
    assert (st["status"], st["initial_tasks"], st["remaining_tasks"]) == ("completed", 0, 0)
    assert core.queue("f") == []
    assert core.tasks(run["run_id"]) == []
    assert realtime.names(run["run_id"]) == ["run:started", "step:m:completed", "run:completed"]


def test_flow_without_steps_completes_with_null_output(core: Core) -> None:
    core.create_flow("f")
    run = core.start_flow("f", {"x": 1})
    assert (run["status"], run["remaining_steps"], run["output"]) == ("completed", 0, None)


def test_start_delay_delays_the_first_message(core: Core) -> None:
    core.flow("f", [("a", [], {"start_delay": 30}), ("b", [])])
    core.start_flow("f", {})
    vt = {m["message"]["step_slug"]: m["vt_in"] for m in core.queue("f")}
    assert 28 < vt["a"] <= 30
    assert vt["b"] <= 0.5
    assert [t["step_slug"] for t in core.poll("f")] == ["b"]


def test_events_on_start(core: Core, realtime: Realtime) -> None:
    core.flow("f", [("b", []), ("a", []), ("c", ["a"])])
    run = core.start_flow("f", {"k": "v"})
    events = realtime.events(run["run_id"])
    assert [e["event"] for e in events] == ["run:started", "step:a:started", "step:b:started"]
    started = events[0]
    assert started["topic"] == f"pgflow:run:{run['run_id']}"
    assert started["private"] is False
    assert set(started["payload"]) - {"id"} == {
        "event_type",
        "run_id",
        "flow_slug",
        "input",
        "status",
        "remaining_steps",
        "started_at",
    }
    p = started["payload"]
    assert (
        p["event_type"],
        p["run_id"],
        p["flow_slug"],
        p["input"],
        p["status"],
        p["remaining_steps"],
    ) == (
        "run:started",
        str(run["run_id"]),
        "f",
        {"k": "v"},
        "started",
        3,
    )
    step = events[1]["payload"]
    assert set(step) - {"id"} == {
        "event_type",
        "run_id",
        "step_slug",
        "status",
        "started_at",
        "remaining_tasks",
        "remaining_deps",
    }
    assert (
        step["event_type"],
        step["step_slug"],
        step["status"],
        step["remaining_tasks"],
        step["remaining_deps"],
    ) == (
        "step:started",
        "a",
        "started",
        1,
        0,
    )
