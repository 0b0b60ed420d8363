"""Conditional steps in the SQL core (upstream 0.14 semantics on the 0.8.1 task input shape).

Patterns are JSON containment (@>) on the run input for a root step and on the object
{dependency: output} of the completed dependencies for a dependent one. when_unmet decides a
ready step whose condition fails, when_exhausted a step whose task ran out of attempts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgflow import sql as core_sql
from tests.sql.conftest import Conn, Core, Listener, Realtime, one, q, scalar


def _step(deps: list[str], **options: Any) -> dict[str, Any]:
    """add_step options with the patterns as jsonb."""
    return {k: Jsonb(v) if k.endswith("_pattern") else v for k, v in options.items()}


def _statuses(core: Core, run_id: uuid.UUID) -> dict[str, tuple[str, str | None]]:
    return {slug: (s["status"], s["skip_reason"]) for slug, s in core.states(run_id).items()}


def _finish(core: Core, flow: str, outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """Complete every task handed out, by step slug, until nothing is left; the tasks seen."""
    seen: list[dict[str, Any]] = []
    for _ in range(20):
        tasks = core.poll(flow)
        if not tasks:
            return seen
        for task in tasks:
            seen.append(task)
            core.complete(
                task["run_id"], task["step_slug"], task["task_index"], outputs[task["step_slug"]]
            )
    raise AssertionError("flow did not settle")


# -- root steps: the run input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "payload", "runs"),
    [
        ({"required_input_pattern": {"plan": "pro"}}, {"plan": "pro", "n": 1}, True),
        ({"required_input_pattern": {"plan": "pro"}}, {"plan": "free"}, False),
        ({"required_input_pattern": {"tags": ["a"]}}, {"tags": ["b", "a"]}, True),
        ({"forbidden_input_pattern": {"dry_run": True}}, {"dry_run": True}, False),
        ({"forbidden_input_pattern": {"dry_run": True}}, {"dry_run": False}, True),
        (
            {"required_input_pattern": {"plan": "pro"}, "forbidden_input_pattern": {"n": 2}},
            {"plan": "pro", "n": 2},
            False,
        ),
        ({"required_input_pattern": {"plan": "pro"}}, "pro", False),  # not an object
    ],
)
def test_root_step_condition_on_run_input(
    core: Core, pattern: dict[str, Any], payload: Any, runs: bool
) -> None:
    core.flow("f", [("a", [], _step([], **pattern)), ("other", [])])
    rid = core.start_flow("f", payload)["run_id"]
    started = {t["step_slug"] for t in core.poll("f")}
    state = core.states(rid)["a"]
    if runs:
        assert "a" in started
        assert (state["status"], state["skip_reason"], state["skipped_at"]) == (
            "started",
            None,
            None,
        )
    else:
        assert started == {"other"}
        assert (state["status"], state["skip_reason"]) == ("skipped", "condition_unmet")
        assert state["skipped_at"] is not None
        assert state["remaining_tasks"] is None
        assert core.tasks(rid, "a") == []
        assert core.run(rid)["remaining_steps"] == 1  # only "other" is left


def test_skipped_root_leaf_is_absent_from_the_run_output(core: Core) -> None:
    core.flow("f", [("a", [], _step([], required_input_pattern={"go": True})), ("b", [])])
    rid = core.start_flow("f", {"go": False})["run_id"]
    _finish(core, "f", {"b": 2})
    run = core.run(rid)
    assert (run["status"], run["output"], run["remaining_steps"]) == ("completed", {"b": 2}, 0)


def test_a_run_whose_every_step_is_skipped_completes_at_start_with_null_output(
    core: Core, realtime: Realtime
) -> None:
    core.flow("f", [("a", [], _step([], required_input_pattern={"go": True}))])
    run = core.start_flow("f", {})
    assert (run["status"], run["output"], run["remaining_steps"]) == ("completed", None, 0)
    assert realtime.names(run["run_id"]) == ["run:started", "step:a:skipped", "run:completed"]
    assert core.queue("f") == []


# -- dependent steps: the outputs of the dependencies -----------------------------------------


def test_dependent_condition_sees_dependency_outputs_by_slug(core: Core) -> None:
    core.flow(
        "f",
        [
            ("a", []),
            ("big", ["a"], _step(["a"], required_input_pattern={"a": {"size": "big"}})),
            ("small", ["a"], _step(["a"], forbidden_input_pattern={"a": {"size": "big"}})),
        ],
    )
    rid = core.start_flow("f", {"size": "small"})["run_id"]  # the run input is not the subject
    seen = _finish(core, "f", {"a": {"size": "big"}, "big": 1, "small": 2})
    assert [t["step_slug"] for t in seen] == ["a", "big"]
    assert _statuses(core, rid) == {
        "a": ("completed", None),
        "big": ("completed", None),
        "small": ("skipped", "condition_unmet"),
    }
    assert core.run(rid)["output"] == {"big": 1}


def test_condition_on_a_map_dependency_sees_its_array(core: Core) -> None:
    core.flow(
        "f",
        [
            ("items", [], {"step_type": "map"}),
            ("has_two", ["items"], _step(["items"], required_input_pattern={"items": [2]})),
        ],
    )
    rid = core.start_flow("f", [1, 2, 3])["run_id"]
    for task in core.poll("f"):
        core.complete(rid, "items", task["task_index"], task["input"])
    (task,) = core.poll("f")
    assert (task["step_slug"], task["input"]) == ("has_two", {"run": [1, 2, 3], "items": [1, 2, 3]})


# -- when_unmet ---------------------------------------------------------------------------------


def test_when_unmet_fail_fails_the_step_and_the_run(core: Core, realtime: Realtime) -> None:
    core.flow(
        "f",
        [
            ("a", []),
            ("side", []),
            ("b", ["a"], _step(["a"], required_input_pattern={"a": "ok"}, when_unmet="fail")),
        ],
    )
    rid = core.start_flow("f", {})["run_id"]
    tasks = {t["step_slug"]: t for t in core.poll("f")}
    (row,) = core.complete(rid, "a", 0, "not ok")
    assert row["status"] == "completed"
    b = core.states(rid)["b"]
    assert (b["status"], b["error_message"], b["skip_reason"]) == (
        "failed",
        "Condition not met",
        None,
    )
    assert b["failed_at"] is not None
    run = core.run(rid)
    assert (run["status"], run["remaining_steps"]) == ("failed", 2)
    assert core.tasks(rid, "b") == []
    # The parallel branch's message is archived with the run; a's was archived on completion.
    assert core.queue("f") == []
    assert {m["msg_id"] for m in core.archive("f")} == {t["msg_id"] for t in tasks.values()}
    names = realtime.names(rid)
    assert names[-3:] == ["step:a:completed", "step:b:failed", "run:failed"]
    failed = realtime.events(rid)[-1]["payload"]
    assert failed["error_message"] == "Condition not met"


def test_when_unmet_fail_on_a_root_step_fails_the_run_in_start_flow(core: Core) -> None:
    core.flow(
        "f",
        [("a", [], _step([], forbidden_input_pattern={"x": 1}, when_unmet="fail")), ("b", [])],
    )
    run = core.start_flow("f", {"x": 1})
    assert run["status"] == "failed"
    assert core.tasks(run["run_id"]) == []  # nothing was started
    assert core.queue("f") == []


def test_when_unmet_skip_lets_dependents_run_without_the_skipped_input(core: Core) -> None:
    core.flow(
        "f",
        [
            ("a", []),
            ("b", ["a"], _step(["a"], required_input_pattern={"a": {"go": True}})),
            ("c", ["a", "b"]),
        ],
    )
    rid = core.start_flow("f", {"n": 1})["run_id"]
    seen = _finish(core, "f", {"a": {"go": False}, "c": "done"})
    assert [t["step_slug"] for t in seen] == ["a", "c"]
    # 0.8.1's input shape, the skipped dependency simply absent.
    assert seen[1]["input"] == {"run": {"n": 1}, "a": {"go": False}}
    assert _statuses(core, rid)["b"] == ("skipped", "condition_unmet")
    run = core.run(rid)
    assert (run["status"], run["output"]) == ("completed", {"c": "done"})


def test_when_unmet_skip_cascade_skips_everything_downstream(
    core: Core, realtime: Realtime
) -> None:
    # A diamond below the skipped step: d is reached twice and counted once.
    core.flow(
        "f",
        [
            ("a", []),
            ("b", ["a"], _step(["a"], required_input_pattern={"a": 1}, when_unmet="skip-cascade")),
            ("c1", ["b"]),
            ("c2", ["b"]),
            ("d", ["c1", "c2"]),
            ("e", ["a"]),
        ],
    )
    rid = core.start_flow("f", {})["run_id"]
    seen = _finish(core, "f", {"a": 2, "e": "e"})
    assert [t["step_slug"] for t in seen] == ["a", "e"]
    assert _statuses(core, rid) == {
        "a": ("completed", None),
        "b": ("skipped", "condition_unmet"),
        "c1": ("skipped", "dependency_skipped"),
        "c2": ("skipped", "dependency_skipped"),
        "d": ("skipped", "dependency_skipped"),
        "e": ("completed", None),
    }
    run = core.run(rid)
    assert (run["status"], run["remaining_steps"], run["output"]) == ("completed", 0, {"e": "e"})
    skipped = [n for n in realtime.names(rid) if n.endswith(":skipped")]
    assert skipped == ["step:b:skipped", "step:c1:skipped", "step:c2:skipped", "step:d:skipped"]


def test_map_child_of_a_skipped_step_gets_no_tasks(core: Core) -> None:
    core.flow(
        "f",
        [
            ("a", [], _step([], required_input_pattern={"go": True})),
            ("each", ["a"], {"step_type": "map"}),
            ("total", ["each"]),
        ],
    )
    rid = core.start_flow("f", {"go": False})["run_id"]
    seen = _finish(core, "f", {"total": 0})
    assert [(t["step_slug"], t["input"]) for t in seen] == [
        ("total", {"run": {"go": False}, "each": []})
    ]
    each = core.states(rid)["each"]
    assert (each["status"], each["initial_tasks"], each["remaining_tasks"]) == ("completed", 0, 0)
    assert core.tasks(rid, "each") == []
    assert core.run(rid)["status"] == "completed"


def test_taskless_map_with_an_unmet_condition_is_skipped_not_completed(core: Core) -> None:
    # An empty root map cascades to its map child in the same transaction; the child's
    # condition must still be decided before the taskless cascade could complete it.
    core.flow(
        "f",
        [
            ("items", [], {"step_type": "map"}),
            (
                "each",
                ["items"],
                _step(["items"], step_type="map", required_input_pattern={"items": [1]}),
            ),
        ],
    )
    run = core.start_flow("f", [])
    assert _statuses(core, run["run_id"]) == {
        "items": ("completed", None),
        "each": ("skipped", "condition_unmet"),
    }
    assert (run["status"], run["output"]) == ("completed", None)


def test_condition_met_after_a_taskless_cascade_starts_the_step(core: Core) -> None:
    core.flow(
        "f",
        [
            ("items", [], {"step_type": "map"}),
            ("after", ["items"], _step(["items"], required_input_pattern={"items": []})),
        ],
    )
    rid = core.start_flow("f", [])["run_id"]
    (task,) = core.poll("f")
    assert (task["step_slug"], task["input"]) == ("after", {"run": [], "items": []})
    assert core.states(rid)["after"]["status"] == "started"


# -- when_exhausted ---------------------------------------------------------------------------


def _exhaust(core: Core, rid: uuid.UUID, step: str, attempts: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for attempt in range(attempts):
        core.make_visible("f")
        (task,) = [t for t in core.poll("f") if t["step_slug"] == step]
        (row,) = core.fail(rid, step, task["task_index"], f"boom {attempt + 1}")
    return row


def test_when_exhausted_skip_after_the_retries(core: Core, realtime: Realtime) -> None:
    core.flow(
        "f",
        [
            ("a", [], {"when_exhausted": "skip", "max_attempts": 2}),
            ("b", ["a"]),
        ],
        base_delay=1,
    )
    rid = core.start_flow("f", {"n": 1})["run_id"]
    core.make_visible("f")
    (task,) = core.poll("f")
    (retry,) = core.fail(rid, "a", 0, "boom 1")
    assert retry["status"] == "queued"  # the retries come first, as with 'fail'
    assert core.states(rid)["a"]["status"] == "started"
    core.make_visible("f")
    (task,) = core.poll("f")
    (row,) = core.fail(rid, "a", 0, "boom 2")
    assert (row["status"], row["attempts_count"], row["error_message"]) == ("failed", 2, "boom 2")
    a = core.states(rid)["a"]
    assert (a["status"], a["skip_reason"], a["error_message"]) == (
        "skipped",
        "handler_failed",
        "boom 2",
    )
    assert a["remaining_tasks"] is None
    assert a["failed_at"] is None
    (b_task,) = core.poll("f")
    assert (b_task["step_slug"], b_task["input"]) == ("b", {"run": {"n": 1}})
    core.complete(rid, "b", 0, "b")
    run = core.run(rid)
    assert (run["status"], run["output"]) == ("completed", {"b": "b"})
    skipped = [e["payload"] for e in realtime.events(rid) if e["event"] == "step:a:skipped"]
    assert len(skipped) == 1
    assert skipped[0]["error_message"] == "boom 2"
    assert task["msg_id"] in {m["msg_id"] for m in core.archive("f")}


def test_when_exhausted_skip_cascade_skips_downstream(core: Core) -> None:
    core.flow(
        "f",
        [
            ("a", [], {"when_exhausted": "skip-cascade", "max_attempts": 1}),
            ("b", ["a"]),
            ("c", []),
        ],
    )
    rid = core.start_flow("f", {})["run_id"]
    core.poll("f")
    core.fail(rid, "a", 0, "boom")
    assert _statuses(core, rid)["b"] == ("skipped", "dependency_skipped")
    assert _statuses(core, rid)["a"] == ("skipped", "handler_failed")
    assert core.run(rid)["status"] == "started"
    core.complete(rid, "c", 0, "c")
    run = core.run(rid)
    assert (run["status"], run["output"]) == ("completed", {"c": "c"})


def test_when_exhausted_fail_is_the_default(core: Core) -> None:
    core.flow("f", [("a", [], {"max_attempts": 1}), ("b", ["a"])])
    assert one(core.conn, "SELECT when_unmet, when_exhausted FROM pgflow.steps LIMIT 1") == {
        "when_unmet": "skip",
        "when_exhausted": "fail",
    }
    rid = core.start_flow("f", {})["run_id"]
    core.poll("f")
    core.fail(rid, "a", 0, "boom")
    assert core.run(rid)["status"] == "failed"
    assert core.states(rid)["a"]["status"] == "failed"


# -- late reports for a skipped step ----------------------------------------------------------


def test_late_complete_and_fail_of_a_skipped_step_change_nothing(core: Core) -> None:
    core.flow(
        "f",
        [("each", [], {"step_type": "map", "when_exhausted": "skip", "max_attempts": 1})],
    )
    rid = core.start_flow("f", [1, 2, 3])["run_id"]
    tasks = core.poll("f")
    assert len(tasks) == 3
    core.fail(rid, "each", 0, "boom")
    assert core.states(rid)["each"]["status"] == "skipped"
    # The siblings' messages went to the archive with the skip; their rows stay as they were.
    assert core.queue("f") == []
    assert [t["status"] for t in core.tasks(rid)] == ["failed", "started", "started"]
    before = (core.run(rid), core.states(rid), core.tasks(rid))

    (late,) = core.complete(rid, "each", 1, "late")
    assert late["status"] == "started"
    (late,) = core.fail(rid, "each", 2, "late")
    assert late["status"] == "started"
    assert (core.run(rid), core.states(rid), core.tasks(rid)) == before
    assert core.queue("f") == []
    assert {m["msg_id"] for m in core.archive("f")} == {t["msg_id"] for t in tasks}


def test_start_tasks_ignores_a_message_of_a_skipped_step(core: Core) -> None:
    core.flow(
        "f", [("each", [], {"step_type": "map", "when_exhausted": "skip", "max_attempts": 1})]
    )
    rid = core.start_flow("f", [1, 2])["run_id"]
    ids = core.read_ids("f", qty=1)
    (first,) = core.start_tasks("f", ids)
    # The second message is read before the first task fails, claimed after the skip.
    late_ids = core.read_ids("f")
    core.fail(rid, "each", first["task_index"], "boom")
    assert core.start_tasks("f", late_ids) == []
    assert core.task(rid, "each", 1)["status"] == "queued"


def test_recovery_leaves_tasks_of_a_skipped_step_alone(core: Core) -> None:
    core.flow(
        "f",
        [("each", [], {"step_type": "map", "when_exhausted": "skip", "max_attempts": 1})],
        timeout=1,
    )
    rid = core.start_flow("f", [1, 2])["run_id"]
    core.poll("f")
    core.fail(rid, "each", 0, "boom")
    core.conn.execute(
        "UPDATE pgflow.step_tasks SET queued_at = queued_at - interval '1 hour',"
        " started_at = started_at - interval '1 hour' WHERE run_id = %s AND status = 'started'",
        (rid,),
    )
    assert q(core.conn, "SELECT * FROM pgflow.recover_stalled_tasks()") == []
    assert core.task(rid, "each", 1)["status"] == "started"


# -- events -----------------------------------------------------------------------------------


def test_step_skipped_event_payload_and_notify(
    core: Core, realtime: Realtime, listener: Listener
) -> None:
    core.flow("f", [("a", [], _step([], required_input_pattern={"go": True})), ("b", [])])
    listener.drain(timeout=0.1)
    rid = core.start_flow("f", {})["run_id"]
    (event,) = [e for e in realtime.events(rid) if e["event"] == "step:a:skipped"]
    payload = event["payload"]
    assert event["topic"] == f"pgflow:run:{rid}"
    assert set(payload) - {"id"} == {
        "event_type",
        "run_id",
        "flow_slug",
        "step_slug",
        "status",
        "skip_reason",
        "skipped_at",
    }
    assert (payload["event_type"], payload["status"], payload["skip_reason"]) == (
        "step:skipped",
        "skipped",
        "condition_unmet",
    )
    assert (payload["run_id"], payload["flow_slug"], payload["step_slug"]) == (str(rid), "f", "a")
    # Announced after run:started and before the other root step starts.
    assert realtime.names(rid)[:3] == ["run:started", "step:a:skipped", "step:b:started"]
    notified = [n for n in listener.drain() if n["event_type"] == "step:skipped"]
    assert notified == [
        {
            "event_type": "step:skipped",
            "run_id": str(rid),
            "flow_slug": "f",
            "step_slug": "a",
            "status": "skipped",
        }
    ]


def test_get_run_with_states_shows_skip_fields_only_on_skipped_steps(core: Core) -> None:
    core.flow("f", [("a", [], _step([], required_input_pattern={"go": True})), ("b", [])])
    rid = core.start_flow("f", {})["run_id"]
    state = scalar(core.conn, "SELECT pgflow.get_run_with_states(%s)", rid)
    steps = {s["step_slug"]: s for s in state["steps"]}
    assert steps["a"]["skip_reason"] == "condition_unmet"
    assert steps["a"]["skipped_at"] is not None
    assert "skip_reason" not in steps["b"]
    assert "skipped_at" not in steps["b"]


# -- definitions and constraints --------------------------------------------------------------


def test_add_step_stores_the_condition_and_keeps_0_8_1_calls_working(core: Core) -> None:
    core.create_flow("f")
    # 0.8.1 positional call: the new parameters keep their defaults.
    core.conn.execute("SELECT pgflow.add_step('f', 'a', '{}', 3, 1, 10, 0, 'single')")
    row = core.add_step(
        "f",
        "b",
        ["a"],
        **_step(
            ["a"],
            required_input_pattern={"a": 1},
            forbidden_input_pattern={"a": 2},
            when_unmet="skip-cascade",
            when_exhausted="skip",
        ),
    )
    assert (
        row["required_input_pattern"],
        row["forbidden_input_pattern"],
        row["when_unmet"],
        row["when_exhausted"],
    ) == ({"a": 1}, {"a": 2}, "skip-cascade", "skip")
    a = one(core.conn, "SELECT * FROM pgflow.steps WHERE step_slug = 'a'")
    assert (a["required_input_pattern"], a["when_unmet"], a["when_exhausted"]) == (
        None,
        "skip",
        "fail",
    )
    overloads = scalar(
        core.conn,
        "SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgflow'::regnamespace"
        " AND proname = 'add_step'",
    )
    assert overloads == 1


@pytest.mark.parametrize(
    ("options", "constraint"),
    [
        ({"required_input_pattern": ["a"]}, "required_input_pattern_is_object"),
        ({"forbidden_input_pattern": "a"}, "forbidden_input_pattern_is_object"),
        ({"when_unmet": "ignore"}, "when_unmet_is_valid"),
        ({"when_exhausted": "retry"}, "when_exhausted_is_valid"),
    ],
)
def test_steps_checks(core: Core, options: dict[str, Any], constraint: str) -> None:
    core.create_flow("f")
    with pytest.raises(psycopg.errors.CheckViolation) as raised:
        core.add_step("f", "a", [], **_step([], **options))
    assert raised.value.diag.constraint_name == constraint
    assert scalar(core.conn, "SELECT count(*) FROM pgflow.steps") == 0


def _violation(conn: Conn, assignments: str, run_id: uuid.UUID) -> str | None:
    try:
        with conn.transaction():
            conn.execute(
                f"UPDATE pgflow.step_states SET {assignments} WHERE run_id = %s", (run_id,)
            )
    except psycopg.errors.CheckViolation as exc:
        return exc.diag.constraint_name
    return None


@pytest.mark.parametrize(
    ("assignments", "constraint"),
    [
        ("status = 'skipped'", "skip_reason_matches_status"),
        ("skip_reason = 'condition_unmet'", "skip_reason_matches_status"),
        ("status = 'bogus'", "status_is_valid"),
        (
            "status = 'skipped', skip_reason = 'x', skipped_at = now(), remaining_tasks = 1",
            "remaining_tasks_state_consistency",
        ),
        (
            "status = 'skipped', skip_reason = 'x', skipped_at = now(), completed_at = now()",
            "completed_at_or_failed_at_or_skipped_at",
        ),
        (
            "status = 'skipped', skip_reason = 'x', skipped_at = created_at - interval '1 s'",
            "skipped_at_is_after_created_at",
        ),
        ("status = 'skipped', skip_reason = 'x', skipped_at = now()", None),
        ("status = 'cancelled'", None),  # migration 0005's status is still allowed
    ],
)
def test_step_states_checks(core: Core, assignments: str, constraint: str | None) -> None:
    core.flow("f", [("a", [], {"start_delay": 60})])
    rid = core.start_flow("f", {})["run_id"]
    core.conn.execute(
        "UPDATE pgflow.step_states SET status = 'created', remaining_tasks = NULL"
        " WHERE run_id = %s",
        (rid,),
    )
    assert _violation(core.conn, assignments, rid) == constraint


def test_skipped_index_exists(core: Core) -> None:
    definition = scalar(
        core.conn,
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_step_states_skipped'",
    )
    assert "status = 'skipped'" in definition


def test_listener_catch_up_rebuilds_step_skipped(core: Core) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    core.flow("f", [("a", [], _step([], required_input_pattern={"go": True})), ("b", [])])
    rid = core.start_flow("f", {})["run_id"]
    rows = core.conn.execute(
        core_sql.query("listener_catch_up"), {"since": since, "active": [], "flows": None}
    ).fetchall()
    assert [(r["event_type"], r["step_slug"], r["status"]) for r in rows if r["run_id"] == rid] == [
        ("run:started", None, "started"),
        ("step:skipped", "a", "skipped"),
        ("step:started", "b", "started"),
    ]


def test_resume_run_decides_skipped_steps_again(core: Core) -> None:
    # b is skipped, then c fails the run; resuming starts every step that did not complete
    # over: b's condition is decided again (still unmet) and c runs again.
    core.flow(
        "f",
        [
            ("a", []),
            ("b", ["a"], _step(["a"], required_input_pattern={"a": 1})),
            ("c", ["a"], {"max_attempts": 1}),
        ],
    )
    rid = core.start_flow("f", {})["run_id"]
    core.poll("f")
    core.complete(rid, "a", 0, 2)
    core.poll("f")
    core.fail(rid, "c", 0, "boom")
    assert core.run(rid)["status"] == "failed"
    assert _statuses(core, rid)["b"] == ("skipped", "condition_unmet")

    resumed = one(core.conn, "SELECT * FROM pgflow.resume_run(%s)", rid)
    assert resumed["status"] == "started"
    assert _statuses(core, rid) == {
        "a": ("completed", None),
        "b": ("skipped", "condition_unmet"),
        "c": ("started", None),
    }
    assert [t["step_slug"] for t in core.poll("f")] == ["c"]
    core.complete(rid, "c", 0, "c")
    run = core.run(rid)
    assert (run["status"], run["output"]) == ("completed", {"c": "c"})
