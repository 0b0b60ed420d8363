"""start_tasks: claiming queued tasks, extending visibility, assembling inputs."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from .conftest import Core, q


def test_claims_task_and_extends_visibility(core: Core) -> None:
    core.flow("f", [("a", [], {"timeout": 10}), ("b", [])], timeout=30)
    run = core.start_flow("f", {"n": 1})
    ids = core.read_ids("f")
    tasks = core.start_tasks("f", ids)
    assert [(t["flow_slug"], t["run_id"], t["step_slug"], t["task_index"]) for t in tasks] == [
        ("f", run["run_id"], "a", 0),
        ("f", run["run_id"], "b", 0),
    ]
    assert list(tasks[0]) == ["flow_slug", "run_id", "step_slug", "input", "msg_id", "task_index"]
    assert sorted(t["msg_id"] for t in tasks) == sorted(ids)
    for t in core.tasks(run["run_id"]):
        assert (t["status"], t["attempts_count"], t["last_worker_id"]) == (
            "started",
            1,
            core.worker_id,
        )
        assert t["started_at"] is not None
    vt = {m["message"]["step_slug"]: m["vt_in"] for m in core.queue("f")}
    assert 11 < vt["a"] <= 12  # step timeout + 2
    assert 31 < vt["b"] <= 32  # flow timeout + 2


def test_root_single_input_is_run_key_only(core: Core) -> None:
    core.flow("f", [("a", [])])
    core.start_flow("f", {"x": [1, 2]})
    (task,) = core.poll("f")
    assert task["input"] == {"run": {"x": [1, 2]}}


def test_dependent_single_input_has_run_and_each_dependency(core: Core) -> None:
    core.flow("f", [("a", []), ("m", [], {"step_type": "map"}), ("c", ["a", "m"])])
    run = core.start_flow("f", [1, 2, 3])
    for t in core.poll("f"):
        out = {"a": {"nested": None}, "m": t["input"] * 10 if t["step_slug"] == "m" else None}[
            t["step_slug"]
        ]
        core.complete(run["run_id"], t["step_slug"], t["task_index"], out)
    (task,) = core.poll("f")
    assert task["step_slug"] == "c"
    assert task["input"] == {"run": [1, 2, 3], "a": {"nested": None}, "m": [10, 20, 30]}


def test_null_output_of_a_dependency_is_json_null(core: Core) -> None:
    core.flow("f", [("a", []), ("b", ["a"])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, None)
    (task,) = core.poll("f")
    assert task["input"] == {"run": {}, "a": None}


def test_root_map_task_gets_its_element(core: Core) -> None:
    core.flow("f", [("m", [], {"step_type": "map"})])
    core.start_flow("f", [{"k": 1}, "two", None, [3]])
    tasks = core.poll("f")
    assert [(t["task_index"], t["input"]) for t in tasks] == [
        (0, {"k": 1}),
        (1, "two"),
        (2, None),
        (3, [3]),
    ]


def test_map_after_single_gets_elements_of_its_output(core: Core) -> None:
    core.flow("f", [("a", []), ("m", ["a"], {"step_type": "map"})])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 0, ["x", {"y": 1}])
    tasks = core.poll("f")
    assert [(t["step_slug"], t["task_index"], t["input"]) for t in tasks] == [
        ("m", 0, "x"),
        ("m", 1, {"y": 1}),
    ]


def test_map_after_map_gets_the_matching_output(core: Core) -> None:
    core.flow("f", [("m1", [], {"step_type": "map"}), ("m2", ["m1"], {"step_type": "map"})])
    run = core.start_flow("f", [1, 2, 3])
    for t in reversed(core.poll("f")):
        core.complete(run["run_id"], "m1", t["task_index"], {"doubled": t["input"] * 2})
    tasks = core.poll("f")
    assert [(t["task_index"], t["input"]) for t in tasks] == [
        (0, {"doubled": 2}),
        (1, {"doubled": 4}),
        (2, {"doubled": 6}),
    ]
    assert core.states(run["run_id"])["m2"]["initial_tasks"] == 3


def test_unknown_and_foreign_ids_are_ignored(core: Core) -> None:
    core.flow("f", [("a", [])])
    core.flow("g", [("a", [])])
    core.start_flow("f", {})
    core.start_flow("g", {})
    g_ids = core.read_ids("g")
    # message ids are per queue: g's ids must not start f's tasks even when the numbers match
    assert g_ids == core.read_ids("f", vt=0)
    assert core.start_tasks("f", [999999]) == []
    assert core.start_tasks("g", [*g_ids, 999999])[0]["flow_slug"] == "g"
    assert core.start_tasks("f", []) == []
    assert [
        t["status"]
        for t in q(core.conn, "SELECT status FROM pgflow.step_tasks WHERE flow_slug = 'f'")
    ] == ["queued"]


def test_started_task_is_not_started_again(core: Core) -> None:
    core.flow("f", [("a", [])])
    core.start_flow("f", {})
    ids = core.read_ids("f")
    assert len(core.start_tasks("f", ids)) == 1
    assert core.start_tasks("f", ids) == []
    assert q(core.conn, "SELECT attempts_count FROM pgflow.step_tasks") == [{"attempts_count": 1}]


def test_tasks_of_failed_runs_are_not_started(core: Core) -> None:
    core.flow("f", [("a", []), ("b", [])], max_attempts=1)
    run = core.start_flow("f", {})
    ids = core.read_ids("f")
    core.start_tasks("f", ids[:1])
    core.fail(run["run_id"], "a", 0, "boom")
    assert core.start_tasks("f", ids[1:]) == []
    assert core.task(run["run_id"], "b")["status"] == "queued"


def test_unknown_worker_is_a_fk_error(core: Core) -> None:
    core.flow("f", [("a", [])])
    core.start_flow("f", {})
    ids = core.read_ids("f")
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="step_tasks_last_worker_id_fkey"):
        core.conn.execute("SELECT * FROM pgflow.start_tasks('f', %s, %s)", (ids, uuid.uuid4()))


def test_null_outputs_reach_map_children_as_json_null(core: Core) -> None:
    core.flow("f", [("r", [], {"step_type": "map"}), ("m", ["r"], {"step_type": "map"})])
    run = core.start_flow("f", [1, 2])
    core.poll("f")
    core.complete(run["run_id"], "r", 0, None)  # SQL NULL
    core.conn.execute(
        "SELECT pgflow.complete_task(%s, 'r', 1, 'null'::jsonb)", (run["run_id"],)
    )  # JSON null
    ids = core.read_ids("f")
    rows = q(
        core.conn,
        "SELECT task_index, input IS NULL AS sql_null, jsonb_typeof(input) AS kind"
        " FROM pgflow.start_tasks('f', %s, %s) ORDER BY task_index",
        ids,
        core.worker_id,
    )
    assert rows == [
        {"task_index": 0, "sql_null": False, "kind": "null"},
        {"task_index": 1, "sql_null": False, "kind": "null"},
    ]
