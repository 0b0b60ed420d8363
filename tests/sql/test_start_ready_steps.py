"""start_ready_steps: starting steps whose dependencies are done."""

from __future__ import annotations

from .conftest import Core, Realtime, q


def test_starts_in_slug_order_with_one_batch_each(core: Core, realtime: Realtime) -> None:
    core.flow(
        "f",
        [
            ("root", []),
            ("zeta", ["root"]),
            ("alpha", ["root"]),
            ("m", ["root"], {"step_type": "map"}),
        ],
    )
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "root", 0, [10, 20])
    names = realtime.names(run["run_id"])
    assert names[-4:] == [
        "step:root:completed",
        "step:alpha:started",
        "step:m:started",
        "step:zeta:started",
    ]
    msgs = [m["message"] for m in core.queue("f")]
    assert [(m["step_slug"], m["task_index"]) for m in msgs] == [
        ("alpha", 0),
        ("m", 0),
        ("m", 1),
        ("zeta", 0),
    ]
    tasks = core.tasks(run["run_id"])
    assert {
        (t["step_slug"], t["task_index"]): t["status"] for t in tasks if t["step_slug"] != "root"
    } == {
        ("alpha", 0): "queued",
        ("m", 0): "queued",
        ("m", 1): "queued",
        ("zeta", 0): "queued",
    }


def test_noop_for_failed_run(core: Core) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    core.conn.execute(
        "UPDATE pgflow.runs SET status = 'failed', failed_at = now() WHERE run_id = %s",
        (run["run_id"],),
    )
    core.conn.execute(
        "INSERT INTO pgflow.steps (flow_slug, step_slug, step_index) VALUES ('f', 'late', 5)"
    )
    core.conn.execute(
        "INSERT INTO pgflow.step_states (flow_slug, run_id, step_slug, initial_tasks)"
        " VALUES ('f', %s, 'late', 1)",
        (run["run_id"],),
    )
    core.conn.execute("SELECT pgflow.start_ready_steps(%s)", (run["run_id"],))
    assert core.states(run["run_id"])["late"]["status"] == "created"


def test_steps_waiting_for_width_do_not_start(core: Core) -> None:
    core.flow("f", [("a", []), ("m", ["a"], {"step_type": "map"})])
    run = core.start_flow("f", {})
    core.conn.execute(
        "UPDATE pgflow.step_states SET remaining_deps = 0 WHERE run_id = %s AND step_slug = 'm'",
        (run["run_id"],),
    )
    core.conn.execute("SELECT pgflow.start_ready_steps(%s)", (run["run_id"],))
    assert core.states(run["run_id"])["m"]["status"] == "created"


def test_defensive_branch_completes_an_empty_map_without_counters(
    core: Core, realtime: Realtime
) -> None:
    core.flow("f", [("a", []), ("m", ["a"], {"step_type": "map"})])
    run = core.start_flow("f", {})
    core.conn.execute(
        "UPDATE pgflow.step_states SET remaining_deps = 0, initial_tasks = 0"
        " WHERE run_id = %s AND step_slug = 'm'",
        (run["run_id"],),
    )
    core.conn.execute("SELECT pgflow.start_ready_steps(%s)", (run["run_id"],))
    st = core.states(run["run_id"])["m"]
    assert (st["status"], st["remaining_tasks"]) == ("completed", 0)
    assert core.run(run["run_id"])["remaining_steps"] == 2
    last = realtime.events(run["run_id"])[-1]
    assert last["event"] == "step:m:completed"
    assert last["payload"]["output"] == []
    assert q(core.conn, "SELECT * FROM pgflow.step_tasks WHERE step_slug = 'm'") == []
