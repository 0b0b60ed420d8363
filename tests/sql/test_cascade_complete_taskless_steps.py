"""cascade_complete_taskless_steps: empty arrays flowing through map chains."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import Core, Realtime, scalar


def test_empty_root_map_chain_completes_in_order(core: Core, realtime: Realtime) -> None:
    core.flow(
        "f",
        [
            ("m1", [], {"step_type": "map"}),
            ("m2", ["m1"], {"step_type": "map"}),
            ("m3", ["m2"], {"step_type": "map"}),
        ],
    )
    run = core.start_flow("f", [])
    assert run["status"] == "completed"
    assert run["output"] == {"m3": []}
    assert realtime.names(run["run_id"]) == [
        "run:started",
        "step:m1:completed",
        "step:m2:completed",
        "step:m3:completed",
        "run:completed",
    ]
    cascaded = realtime.events(run["run_id"])[1]["payload"]
    assert set(cascaded) - {"id"} == {
        "event_type",
        "run_id",
        "step_slug",
        "status",
        "output",
        "completed_at",
        "started_at",
        "remaining_tasks",
        "remaining_deps",
    }
    assert (
        cascaded["output"],
        cascaded["remaining_tasks"],
        cascaded["remaining_deps"],
        cascaded["status"],
    ) == (
        [],
        0,
        0,
        "completed",
    )
    for st in core.states(run["run_id"]).values():
        assert (st["status"], st["initial_tasks"], st["remaining_tasks"]) == ("completed", 0, 0)
        assert st["started_at"] == st["completed_at"]


def test_single_child_of_empty_map_starts_with_empty_list(core: Core) -> None:
    core.flow(
        "f", [("m", [], {"step_type": "map"}), ("m2", ["m"], {"step_type": "map"}), ("s", ["m2"])]
    )
    run = core.start_flow("f", [])
    assert run["remaining_steps"] == 1
    (task,) = core.poll("f")
    assert task["step_slug"] == "s"
    assert task["input"] == {"run": [], "m2": []}
    core.complete(run["run_id"], "s", 0, "done")
    assert core.run(run["run_id"])["output"] == {"s": "done"}


def test_empty_array_from_single_parent_cascades(core: Core, realtime: Realtime) -> None:
    core.flow(
        "f", [("a", []), ("m", ["a"], {"step_type": "map"}), ("mm", ["m"], {"step_type": "map"})]
    )
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, [])
    r = core.run(run["run_id"])
    assert (r["status"], r["output"], r["remaining_steps"]) == ("completed", {"mm": []}, 0)
    assert realtime.names(run["run_id"])[-4:] == [
        "step:a:completed",
        "step:m:completed",
        "step:mm:completed",
        "run:completed",
    ]


def test_returns_count_and_is_noop_without_work(core: Core) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    assert (
        scalar(core.conn, "SELECT pgflow.cascade_complete_taskless_steps(%s) AS n", run["run_id"])
        == 0
    )


def test_returns_number_completed(core: Core) -> None:
    core.flow(
        "f", [("a", []), ("m", ["a"], {"step_type": "map"}), ("mm", ["m"], {"step_type": "map"})]
    )
    run = core.start_flow("f", {})
    core.conn.execute(
        "UPDATE pgflow.step_states SET remaining_deps = 0, initial_tasks = 0"
        " WHERE run_id = %s AND step_slug = 'm'",
        (run["run_id"],),
    )
    assert (
        scalar(core.conn, "SELECT pgflow.cascade_complete_taskless_steps(%s) AS n", run["run_id"])
        == 2
    )
    assert core.run(run["run_id"])["remaining_steps"] == 1


def _chain(levels: int) -> list[tuple[str, list[str], dict[str, str]]]:
    steps: list[tuple[str, list[str], dict[str, str]]] = [("m0", [], {"step_type": "map"})]
    steps += [(f"m{i}", [f"m{i - 1}"], {"step_type": "map"}) for i in range(1, levels)]
    return steps


def test_safety_limit(core: Core) -> None:
    # Every pass counts, including the last one that finds nothing left: 50 levels need 51.
    steps = _chain(50)
    core.flow("f", steps)
    with pytest.raises(
        psycopg.errors.RaiseException, match=r"^Cascade loop exceeded safety limit of 50 iterations"
    ):
        core.start_flow("f", [])


def test_forty_nine_levels_are_fine(core: Core) -> None:
    core.flow("f", _chain(49))
    assert core.start_flow("f", [])["status"] == "completed"
