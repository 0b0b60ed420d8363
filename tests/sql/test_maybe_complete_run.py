"""maybe_complete_run: completion once every step is done, output from leaf steps."""

from __future__ import annotations

from .conftest import Core, Realtime


def test_does_nothing_while_steps_remain(core: Core, realtime: Realtime) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    n = len(realtime.events())
    core.conn.execute("SELECT pgflow.maybe_complete_run(%s)", (run["run_id"],))
    assert core.run(run["run_id"])["status"] == "started"
    assert len(realtime.events()) == n


def test_completes_once(core: Core, realtime: Realtime) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, 5)
    first = core.run(run["run_id"])
    core.conn.execute("SELECT pgflow.maybe_complete_run(%s)", (run["run_id"],))
    assert core.run(run["run_id"]) == first
    assert realtime.names(run["run_id"]).count("run:completed") == 1


def test_failed_run_never_completes(core: Core) -> None:
    core.flow("f", [("a", [])], max_attempts=1)
    run = core.start_flow("f", {})
    core.poll("f")
    core.fail(run["run_id"], "a", 0, "x")
    core.conn.execute("UPDATE pgflow.runs SET remaining_steps = 0")
    core.conn.execute("SELECT pgflow.maybe_complete_run(%s)", (run["run_id"],))
    assert core.run(run["run_id"])["status"] == "failed"


def test_output_has_only_leaves(core: Core) -> None:
    core.flow(
        "f",
        [
            ("root", []),
            ("mid", ["root"]),
            ("leaf1", ["mid"]),
            ("leaf2", ["root"]),
            ("m", [], {"step_type": "map"}),
        ],
    )
    run = core.start_flow("f", [7, 8])
    core.run_until_done(
        "f", lambda t: t["input"] if t["step_slug"] == "m" else t["step_slug"].upper()
    )
    assert core.run(run["run_id"])["output"] == {"leaf1": "LEAF1", "leaf2": "LEAF2", "m": [7, 8]}


def test_null_leaf_output_is_kept_as_json_null(core: Core) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, None)
    assert core.run(run["run_id"])["output"] == {"a": None}
