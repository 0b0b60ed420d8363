"""complete_task: finishing tasks, steps and runs; type violations; late calls."""

from __future__ import annotations

from .conftest import Core, Listener, Realtime, q


def test_single_step_completion_releases_dependents(core: Core) -> None:
    core.flow("f", [("a", []), ("b", ["a"])])
    run = core.start_flow("f", {})
    (task,) = core.poll("f")
    (row,) = core.complete(run["run_id"], "a", 0, {"ok": 1})
    assert (row["status"], row["output"]) == ("completed", {"ok": 1})
    assert row["completed_at"] is not None
    states = core.states(run["run_id"])
    assert (states["a"]["status"], states["a"]["remaining_tasks"]) == ("completed", 0)
    assert (states["b"]["status"], states["b"]["remaining_deps"]) == ("started", 0)
    assert core.run(run["run_id"])["remaining_steps"] == 1
    assert [m["msg_id"] for m in core.archive("f")] == [task["msg_id"]]
    assert [m["message"]["step_slug"] for m in core.queue("f")] == ["b"]


def test_map_output_is_ordered_by_task_index_whatever_the_completion_order(
    core: Core, realtime: Realtime
) -> None:
    core.flow("f", [("m", [], {"step_type": "map"}), ("s", ["m"])])
    run = core.start_flow("f", ["a", "b", "c", "d"])
    core.poll("f")
    for i in (2, 0, 3):
        core.complete(run["run_id"], "m", i, f"out{i}")
        assert core.states(run["run_id"])["m"]["status"] == "started"
    assert core.states(run["run_id"])["m"]["remaining_tasks"] == 1
    core.complete(run["run_id"], "m", 1, "out1")
    completed = [e for e in realtime.events(run["run_id"]) if e["event"] == "step:m:completed"]
    assert completed[0]["payload"]["output"] == ["out0", "out1", "out2", "out3"]
    (task,) = core.poll("f")
    assert task["input"]["m"] == ["out0", "out1", "out2", "out3"]


def test_leaf_outputs_make_the_run_output(core: Core, realtime: Realtime) -> None:
    core.flow("f", [("a", []), ("b", ["a"]), ("m", ["a"], {"step_type": "map"}), ("c", [])])
    run = core.start_flow("f", {})
    outputs = {"a": [1, 2], "c": "leaf c", "b": {"b": True}}
    core.run_until_done(
        "f", lambda t: outputs[t["step_slug"]] if t["step_slug"] in outputs else t["input"] * 100
    )
    r = core.run(run["run_id"])
    assert r["status"] == "completed"
    assert r["output"] == {"b": {"b": True}, "m": [100, 200], "c": "leaf c"}
    assert r["completed_at"] is not None
    last = realtime.events(run["run_id"])[-1]
    assert last["event"] == "run:completed"
    assert set(last["payload"]) - {"id"} == {
        "event_type",
        "run_id",
        "flow_slug",
        "status",
        "output",
        "completed_at",
    }
    assert last["payload"]["output"] == r["output"]


def test_completing_a_queued_task_changes_nothing(core: Core) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    before = core.task(run["run_id"], "a")
    (row,) = core.complete(run["run_id"], "a", 0, {"x": 1})
    assert row == before
    assert core.task(run["run_id"], "a") == before
    assert len(core.queue("f")) == 1
    assert core.archive("f") == []
    assert core.states(run["run_id"])["a"]["remaining_tasks"] == 1


def test_repeat_completion_changes_no_state_but_reannounces_the_step(
    core: Core, realtime: Realtime, listener: Listener
) -> None:
    core.flow("f", [("a", []), ("b", [])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, 1)
    snapshot = (core.tasks(run["run_id"]), core.states(run["run_id"]), core.run(run["run_id"]))
    first = realtime.events(run["run_id"])[-1]
    listener.drain()
    (row,) = core.complete(run["run_id"], "a", 0, 2)
    assert row["output"] == 1
    assert (
        core.tasks(run["run_id"]),
        core.states(run["run_id"]),
        core.run(run["run_id"]),
    ) == snapshot
    # upstream 0.8.1 sends step:completed again, with the repeated call's output
    again = realtime.events(run["run_id"])[-1]
    assert again["event"] == first["event"] == "step:a:completed"
    assert again["payload"]["output"] == 2
    assert again["payload"]["completed_at"] == first["payload"]["completed_at"]
    assert [n["event_type"] for n in listener.drain()] == ["step:completed"]
    # ... even for a task index that does not exist
    n = len(realtime.events())
    assert core.complete(run["run_id"], "a", 7, 3) == []
    assert len(realtime.events()) == n + 1
    assert realtime.events(run["run_id"])[-1]["payload"]["output"] == 3


def test_repeat_on_completed_map_reannounces_the_stored_outputs(
    core: Core, realtime: Realtime
) -> None:
    core.flow("f", [("m", [], {"step_type": "map"}), ("s", ["m"])])
    run = core.start_flow("f", ["x", "y"])
    core.poll("f")
    core.complete(run["run_id"], "m", 0, "a")
    core.complete(run["run_id"], "m", 0, "a2")  # step still running: nothing announced
    assert realtime.names(run["run_id"])[-1] == "step:m:started"
    core.complete(run["run_id"], "m", 1, "b")
    core.complete(run["run_id"], "m", 1, "b2")
    last = realtime.events(run["run_id"])[-1]
    assert (last["event"], last["payload"]["output"]) == ("step:m:completed", ["a", "b"])


def test_unknown_task_returns_nothing(core: Core) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    assert core.complete(run["run_id"], "a", 5, 1) == []
    assert core.complete(run["run_id"], "zz", 0, 1) == []


def test_type_violation_fails_the_run_at_once(core: Core, realtime: Realtime) -> None:
    core.flow(
        "f",
        [("a", []), ("m", ["a"], {"step_type": "map"}), ("other", [])],
        max_attempts=5,
    )
    run = core.start_flow("f", {})
    core.poll("f")
    assert core.complete(run["run_id"], "a", 0, {"not": "array"}) == []
    r = core.run(run["run_id"])
    assert r["status"] == "failed"
    assert r["failed_at"] is not None
    t = core.task(run["run_id"], "a")
    assert (t["status"], t["output"], t["error_message"]) == (
        "failed",
        {"not": "array"},
        "[TYPE_VIOLATION] Produced object instead of array",
    )
    assert t["attempts_count"] == 1
    st = core.states(run["run_id"])
    assert (st["a"]["status"], st["a"]["error_message"]) == (
        "failed",
        "[TYPE_VIOLATION] Map step m expects array input but dependency a produced object",
    )
    assert st["m"]["status"] == "created"
    assert st["m"]["initial_tasks"] is None
    # every queued/started message of the run is archived: a's own and the sibling's
    assert core.queue("f") == []
    assert {m["message"]["step_slug"] for m in core.archive("f")} == {"a", "other"}
    assert core.task(run["run_id"], "other")["status"] == "started"
    events = realtime.events(run["run_id"])
    assert [e["event"] for e in events[-2:]] == ["run:failed", "step:a:failed"]
    run_failed, step_failed = events[-2]["payload"], events[-1]["payload"]
    assert set(run_failed) - {"id"} == {"event_type", "run_id", "flow_slug", "status", "failed_at"}
    assert set(step_failed) - {"id"} == {
        "event_type",
        "run_id",
        "step_slug",
        "status",
        "error_message",
        "failed_at",
    }
    assert step_failed["error_message"] == st["a"]["error_message"]


def test_type_violation_for_null_scalar_and_string(core: Core) -> None:
    core.flow("f", [("a", []), ("m", ["a"], {"step_type": "map"})])
    for output, kind in ((None, "null"), (3, "number"), ("s", "string"), (True, "boolean")):
        run = core.start_flow("f", {})
        core.poll("f")
        core.complete(run["run_id"], "a", 0, output)
        assert (
            core.task(run["run_id"], "a")["error_message"]
            == f"[TYPE_VIOLATION] Produced {kind} instead of array"
        )


def test_type_violation_fires_for_a_task_that_never_started(core: Core) -> None:
    core.flow("f", [("a", []), ("m", ["a"], {"step_type": "map"})])
    run = core.start_flow("f", {})
    assert core.complete(run["run_id"], "a", 0, {"k": 1}) == []
    t = core.task(run["run_id"], "a")
    assert (t["status"], t["started_at"], t["output"]) == ("failed", None, {"k": 1})
    assert core.run(run["run_id"])["status"] == "failed"
    assert core.queue("f") == []


def test_type_violation_names_the_first_map_child_by_slug(core: Core) -> None:
    core.flow(
        "f",
        [("a", []), ("zeta", ["a"], {"step_type": "map"}), ("beta", ["a"], {"step_type": "map"})],
    )
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, 1)
    assert core.states(run["run_id"])["a"]["error_message"] == (
        "[TYPE_VIOLATION] Map step beta expects array input but dependency a produced number"
    )


def test_non_array_is_fine_without_map_child(core: Core) -> None:
    core.flow("f", [("a", []), ("b", ["a"])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, "scalar")
    assert core.run(run["run_id"])["status"] == "started"


def test_late_completion_after_run_failed_is_a_noop(core: Core, listener: Listener) -> None:
    core.flow("f", [("a", []), ("b", [])], max_attempts=1)
    run = core.start_flow("f", {})
    core.poll("f")
    core.fail(run["run_id"], "a", 0, "boom")
    listener.drain()
    before = core.task(run["run_id"], "b")
    (row,) = core.complete(run["run_id"], "b", 0, {"late": True})
    assert row == before
    assert core.task(run["run_id"], "b") == before
    assert core.states(run["run_id"])["b"]["status"] == "started"
    assert core.run(run["run_id"])["status"] == "failed"
    assert listener.drain() == []


def test_events_and_notifications_on_completion(
    core: Core, realtime: Realtime, listener: Listener
) -> None:
    core.flow("f", [("a", []), ("b", ["a"])])
    run = core.start_flow("f", {})
    rid = str(run["run_id"])
    core.poll("f")
    core.complete(run["run_id"], "a", 0, {"x": 1})
    core.poll("f")
    core.complete(run["run_id"], "b", 0, "y")
    assert realtime.names(run["run_id"]) == [
        "run:started",
        "step:a:started",
        "step:a:completed",
        "step:b:started",
        "step:b:completed",
        "run:completed",
    ]
    completed = realtime.events(run["run_id"])[2]["payload"]
    assert set(completed) - {"id"} == {
        "event_type",
        "run_id",
        "step_slug",
        "status",
        "output",
        "completed_at",
    }
    assert completed["output"] == {"x": 1}
    assert listener.drain() == [
        {
            "event_type": "run:started",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": None,
            "status": "started",
        },
        {
            "event_type": "step:started",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": "a",
            "status": "started",
        },
        {
            "event_type": "step:completed",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": "a",
            "status": "completed",
        },
        {
            "event_type": "step:started",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": "b",
            "status": "started",
        },
        {
            "event_type": "step:completed",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": "b",
            "status": "completed",
        },
        {
            "event_type": "run:completed",
            "run_id": rid,
            "flow_slug": "f",
            "step_slug": None,
            "status": "completed",
        },
    ]


def test_message_archived_for_each_map_task(core: Core) -> None:
    core.flow("f", [("m", [], {"step_type": "map"})])
    run = core.start_flow("f", [1, 2])
    core.poll("f")
    core.complete(run["run_id"], "m", 1, "b")
    assert [m["message"]["task_index"] for m in core.archive("f")] == [1]
    assert [m["message"]["task_index"] for m in core.queue("f")] == [0]
    assert q(core.conn, "SELECT status FROM pgflow.runs") == [{"status": "started"}]
