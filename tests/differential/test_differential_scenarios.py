"""Named edge cases, scripted, applied to upstream 0.8.1 and to ours and compared step by step.

Every call below is compared by the harness (results, errors, tables, queue, archive,
visibility, realtime events); the scripts only choose what to do.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential._diff_harness import JSON_NULL, SQL_NULL, Differential, Side

pytestmark = pytest.mark.differential


@pytest.fixture
def d(module_sides: tuple[Side, Side]) -> Differential:
    upstream, ours = module_sides
    return Differential(upstream, ours)


def _complete_all_started(d: Differential, output: Any = None) -> None:
    for task in d.tasks():
        if task.status == "started":
            value = {"step": task.step_slug, "i": task.task_index} if output is None else output
            d.complete_task(task.run, task.step_slug, task.task_index, value)


# -- empty arrays ------------------------------------------------------------------------------


def test_empty_root_map_completes_without_tasks(d: Differential) -> None:
    d.create_flow()
    d.add_step("items", step_type="map")
    d.add_step("more", ["items"], step_type="map")
    d.add_step("after", ["items"])
    d.start_flow([])
    d.poll()
    d.complete_task(0, "after", 0, {"done": True})
    d.get_run_with_states(0)


def test_flow_of_only_empty_maps_completes_inside_start_flow(d: Differential) -> None:
    d.create_flow()
    d.add_step("a", step_type="map")
    d.add_step("b", ["a"], step_type="map")
    d.add_step("c", step_type="map")
    d.start_flow([], with_states=True)
    d.start_flow([])
    d.read()


def test_root_map_input_errors(d: Differential) -> None:
    d.create_flow()
    d.add_step("items", step_type="map")
    d.start_flow({"not": "an array"})
    d.start_flow("text")
    d.start_flow(JSON_NULL)
    d.start_flow(SQL_NULL)
    d.start_flow([1, 2, 3])


def test_map_to_map_chain_of_empty_arrays(d: Differential) -> None:
    d.create_flow()
    d.add_step("s")
    d.add_step("m1", ["s"], step_type="map")
    d.add_step("m2", ["m1"], step_type="map")
    d.add_step("m3", ["m2"], step_type="map")
    d.add_step("t", ["m3"])
    d.start_flow({"x": 1})
    d.poll()
    d.complete_task(0, "s", 0, [])
    d.poll()
    d.complete_task(0, "t", 0, "end")


def test_empty_root_map_cascades_through_map_chain(d: Differential) -> None:
    d.create_flow()
    d.add_step("r", step_type="map")
    d.add_step("m1", ["r"], step_type="map")
    d.add_step("m2", ["m1"], step_type="map")
    d.add_step("single", ["m2"])
    d.add_step("other", [])
    d.start_flow([])
    d.poll()
    _complete_all_started(d)


def test_map_to_map_preserves_order_with_out_of_order_completion(d: Differential) -> None:
    d.create_flow()
    d.add_step("r", step_type="map")
    d.add_step("m", ["r"], step_type="map")
    d.add_step("sum", ["m", "r"])
    d.start_flow([10, 20, 30, 40])
    d.poll()
    for index, output in ((2, "c"), (0, SQL_NULL), (3, JSON_NULL), (1, [1])):
        d.complete_task(0, "r", index, output)
    d.poll()
    for index in (3, 1, 0, 2):
        d.complete_task(0, "m", index, {"m": index})
    d.poll()
    d.complete_task(0, "sum", 0, 0)


# -- type violations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output",
    [{"a": 1}, SQL_NULL, JSON_NULL, 0, False, "text", 3.5],
    ids=["object", "sql-null", "json-null", "zero", "false", "string", "number"],
)
def test_single_step_feeding_map_with_non_array(d: Differential, output: Any) -> None:
    d.create_flow()
    d.add_step("s")
    d.add_step("m", ["s"], step_type="map")
    d.add_step("side")
    d.add_step("later", ["side"])
    d.start_flow({"n": 1})
    d.poll()
    d.complete_task(0, "s", 0, output)
    # Everything after the failure: late calls, stale messages.
    d.complete_task(0, "side", 0, "late")
    d.fail_task(0, "side", 0, "late failure")
    d.start_tasks([0, 1])
    d.read()
    d.get_run_with_states(0)


def test_type_violation_with_two_map_children(d: Differential) -> None:
    # Which map child the message names is upstream's choice (see report).
    d.create_flow()
    d.add_step("c")
    d.add_step("g", ["c"], step_type="map")
    d.add_step("a", ["c"], step_type="map")
    d.start_flow({})
    d.poll()
    d.complete_task(0, "c", 0, {"k": 1})


def test_completing_a_queued_single_feeding_a_map_with_non_array(d: Differential) -> None:
    d.create_flow()
    d.add_step("s")
    d.add_step("m", ["s"], step_type="map")
    d.start_flow({})
    d.complete_task(0, "s", 0, {"never": "started"})
    d.get_run_with_states(0)


# -- retries and failure -----------------------------------------------------------------------


def test_retries_until_exhaustion(d: Differential) -> None:
    d.create_flow(max_attempts=3, base_delay=2, timeout=7)
    d.add_step("work")
    d.add_step("next", ["work"])
    d.start_flow({"attempt": "all"})
    for attempt in range(3):
        d.poll()
        d.fail_task(0, "work", 0, f"failure {attempt}")
    # Everything after exhaustion is late.
    d.poll()
    d.complete_task(0, "work", 0, "too late")
    d.fail_task(0, "work", 0, "again")
    d.get_run_with_states(0)


def test_step_options_override_flow_options(d: Differential) -> None:
    d.create_flow(max_attempts=1, base_delay=10, timeout=3)
    d.add_step("retrying", max_attempts=2, base_delay=3, timeout=11)
    d.add_step("once", max_attempts=0)
    d.start_flow({})
    d.poll()
    d.fail_task(0, "retrying", 0, "first")
    d.poll()
    d.complete_task(0, "retrying", 0, {"ok": True})
    d.fail_task(0, "once", 0, "only attempt")


def test_late_complete_and_fail_after_run_failure(d: Differential) -> None:
    d.create_flow(max_attempts=1)
    d.add_step("a")
    d.add_step("b")
    d.add_step("m", step_type="map")
    d.add_step("c", ["a"])
    d.start_flow([1, 2, 3])
    d.read(qty=3)
    d.start_tasks()
    d.fail_task(0, "a", 0, "fatal")
    d.complete_task(0, "b", 0, "late")  # started, run failed
    d.fail_task(0, "m", 0, "late")  # started
    d.complete_task(0, "m", 2, "late")  # queued, never started
    d.fail_task(0, "m", 2, "late")
    d.complete_task(0, "c", 0, "never created")
    d.start_tasks([0, 1, 2, 3, 4])
    d.poll()
    d.start_flow([1])  # a second run is unaffected
    d.poll()
    _complete_all_started(d)


def test_duplicate_and_out_of_state_calls(d: Differential) -> None:
    d.create_flow()
    d.add_step("a")
    d.add_step("b", ["a"])
    d.start_flow({})
    d.complete_task(0, "a", 0, "queued, not started")
    d.fail_task(0, "a", 0, "queued, not started")
    d.poll()
    d.complete_task(0, "a", 0, "first")
    d.complete_task(0, "a", 0, "second")
    d.fail_task(0, "a", 0, "after completion")
    d.complete_task(0, "a", 7, "no such task")
    d.complete_task(0, "nope", 0, "no such step")
    d.poll()
    d.complete_task(0, "b", 0, "done")
    d.complete_task(0, "b", 0, "done again")


# -- delays and visibility ---------------------------------------------------------------------


def test_start_delay_applies_to_the_first_send_only(d: Differential) -> None:
    d.create_flow(base_delay=1, timeout=4)
    d.add_step("root", start_delay=3)
    d.add_step("child", ["root"], start_delay=5, timeout=9)
    d.add_step("fan", ["root"], start_delay=2, step_type="map")
    d.start_flow({})
    d.poll()
    d.fail_task(0, "root", 0, "retry me")
    d.poll()
    d.complete_task(0, "root", 0, ["x", "y"])
    d.poll()
    d.fail_task(0, "child", 0, "retry me too")
    d.fail_task(0, "fan", 1, "retry")


def test_reads_do_not_start_tasks_twice(d: Differential) -> None:
    d.create_flow(timeout=5)
    d.add_step("a")
    d.start_flow({})
    d.poll()
    d.poll()  # the message again: its task is already started
    d.complete_task(0, "a", 0, "ok")
    d.poll()


# -- definitions -------------------------------------------------------------------------------


def test_flow_definition_rules_and_errors(d: Differential) -> None:
    d.create_flow(max_attempts=2, base_delay=1, timeout=9)
    d.create_flow(max_attempts=5, base_delay=5, timeout=5)  # existing options unchanged
    d.add_step("a", max_attempts=1, base_delay=0, timeout=1, start_delay=0)
    d.add_step("a", max_attempts=4)  # idempotent
    d.add_step("b", ["a"])
    d.add_step("c", ["a", "b"])
    for bad in ("", "1abc", "run", "has-dash", "x" * 129):
        d.add_step(bad)
    d.add_step("y" * 128)
    d.add_step("self", ["self"])
    d.add_step("orphan", ["missing"])
    d.add_step("m2", ["a", "b"], step_type="map")
    d.add_step("weird", step_type="other")
    d.add_step("neg", max_attempts=-1)
    d.add_step("neg2", base_delay=-1)
    d.add_step("zero_timeout", timeout=0)
    d.add_step("neg_delay", start_delay=-1)
    d.add_step("elsewhere", flow_slug="no_such_flow")
    d.sql("create_flow bad slug", "SELECT * FROM pgflow.create_flow('run')")
    d.sql(
        "create_flow bad timeout", "SELECT * FROM pgflow.create_flow('bad_timeout', timeout => 0)"
    )
    d.sql("start_flow of unknown flow", "SELECT * FROM pgflow.start_flow('no_such_flow', '{}')")
    d.start_flow(SQL_NULL)
    d.sql("is_valid_slug", "SELECT pgflow.is_valid_slug(%s) AS ok", ["a_1"])
    d.sql("calculate_retry_delay", "SELECT pgflow.calculate_retry_delay(2.5, 3) AS delay")


def test_set_vt_batch_arguments(d: Differential) -> None:
    d.create_flow()
    d.add_step("a", step_type="map")
    d.start_flow([1, 2])
    call = "SELECT * FROM pgflow.set_vt_batch(%s, %s::bigint[], %s::int[])"
    d.sql("set_vt_batch empty", call, [d.flow_slug, [], []])
    d.sql("set_vt_batch null", call, [d.flow_slug, None, [1]])
    d.sql("set_vt_batch mismatch", call, [d.flow_slug, [1, 2], [5]])
    d.sql("set_vt_batch unknown queue", call, ["no_such_queue", [1], [5]])
    d.do(
        "set_vt_batch both messages",
        d.statement(call, lambda side: [d.flow_slug, [side.msg_id(0), side.msg_id(1)], [7, 0]]),
        ordered=False,
    )
    d.sql(
        "poll_for_tasks (deprecated)",
        "SELECT * FROM pgflow.poll_for_tasks(%s, 1, 10)",
        [d.flow_slug],
    )
