"""`pgflow flows`: the DAG layout (pure) and the command on real flows in a real database."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgflow import Flow
from pgflow.cli._dag import DagStep, draw_flow, format_options, layers
from pgflow.flows import ensure_flow
from tests._helpers import run_cli

DEFAULTS = {"max_attempts": 3, "base_delay": 5, "timeout": 60}


def chain(*slugs: str) -> list[DagStep]:
    return [DagStep(slug, tuple(slugs[:i][-1:])) for i, slug in enumerate(slugs)]


def test_layers_of_a_chain_are_one_step_each() -> None:
    assert layers(chain("a", "b", "c")) == [["a"], ["b"], ["c"]]


def test_layers_of_a_diamond() -> None:
    steps = [
        DagStep("start"),
        DagStep("left", ("start",)),
        DagStep("right", ("start",)),
        DagStep("join", ("left", "right")),
    ]
    assert layers(steps) == [["start"], ["left", "right"], ["join"]]


def test_a_step_sits_below_its_deepest_dependency() -> None:
    steps = [
        DagStep("a"),
        DagStep("b", ("a",)),
        DagStep("c", ("b",)),
        DagStep("shortcut", ("a", "c")),  # reachable from a in one hop, but waits for c
    ]
    assert layers(steps) == [["a"], ["b"], ["c"], ["shortcut"]]


def test_several_roots_share_the_first_layer_in_the_order_given() -> None:
    steps = [DagStep("z"), DagStep("y"), DagStep("after_y", ("y",)), DagStep("x")]
    assert layers(steps) == [["z", "y", "x"], ["after_y"]]


def test_layers_accept_steps_listed_after_their_dependents() -> None:
    assert layers([DagStep("b", ("a",)), DagStep("a")]) == [["a"], ["b"]]
    assert layers([]) == []


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([DagStep("a"), DagStep("a")], "step 'a' appears twice"),
        ([DagStep("a", ("ghost", "a2"))], "step 'a' depends on unknown step(s) ghost, a2"),
        (
            [DagStep("ok"), DagStep("a", ("b",)), DagStep("b", ("a",))],
            "dependency cycle among steps a, b",
        ),
    ],
)
def test_layers_refuse_what_is_not_a_dag(steps: list[DagStep], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        layers(steps)
    assert str(raised.value) == message


@st.composite
def dags(draw: st.DrawFn) -> list[DagStep]:
    """Random DAGs: each step may depend on any earlier ones; then shuffled."""
    count = draw(st.integers(0, 12))
    steps = []
    for index in range(count):
        earlier = [f"s{i}" for i in range(index)]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        steps.append(DagStep(f"s{index}", tuple(deps)))
    return draw(st.permutations(steps))


@given(dags())
def test_layers_are_a_longest_path_layering(steps: list[DagStep]) -> None:
    layered = layers(steps)
    where = {slug: depth for depth, layer in enumerate(layered) for slug in layer}
    assert sorted(where) == sorted(s.slug for s in steps)  # each step exactly once
    assert sum(map(len, layered)) == len(steps)
    assert all(layer for layer in layered)
    for step in steps:
        assert all(where[d] < where[step.slug] for d in step.deps)
        # no lower than needed: right below its deepest dependency (roots on top)
        assert where[step.slug] == 1 + max((where[d] for d in step.deps), default=-1)


def test_draw_a_diamond_with_a_map_and_options() -> None:
    steps = [
        DagStep("start"),
        DagStep("left", ("start",), options={"max_attempts": 5}),
        DagStep("right", ("start",), "map", {"timeout": 30, "start_delay": 2}),
        DagStep("join", ("left", "right")),
    ]
    assert draw_flow("diamond", steps, DEFAULTS) == [
        "diamond  max_attempts=3 base_delay=5s timeout=60s",
        " 1 │ start  single                              ◀── run input",
        " 2 │ left   single  max_attempts=5              ◀── start",
        "   │ right  map     timeout=30s start_delay=2s  ◀── start",
        " 3 │ join   single                              ◀─┬─ left",
        "   │                                              └─ right",
    ]


def test_draw_a_fan_in_of_three_roots() -> None:
    steps = [DagStep("a"), DagStep("b"), DagStep("c", step_type="map"), DagStep("merge", "abc")]
    assert draw_flow("fan_in", steps, {}) == [
        "fan_in",
        " 1 │ a      single  ◀── run input",
        "   │ b      single  ◀── run input",
        "   │ c      map     ◀── run input",
        " 2 │ merge  single  ◀─┬─ a",
        "   │                  ├─ b",
        "   │                  └─ c",
    ]


def test_draw_aligns_layer_numbers_and_handles_no_steps() -> None:
    lines = draw_flow("long", chain(*(f"s{i}" for i in range(11))), DEFAULTS)
    assert lines[1] == "  1 │ s0   single  ◀── run input"
    assert lines[-1] == " 11 │ s10  single  ◀── s9"
    assert draw_flow("empty", [], DEFAULTS) == [
        "empty  max_attempts=3 base_delay=5s timeout=60s",
        "   (no steps)",
    ]


def test_format_options_skips_unset_ones_in_a_fixed_order() -> None:
    assert format_options({"timeout": 9, "max_attempts": None, "start_delay": 0}) == (
        "timeout=9s start_delay=0s"
    )
    assert format_options({}) == ""


def order_flow() -> Flow[Any]:
    flow: Flow[Any] = Flow("process_order", max_attempts=2, base_delay=1)

    @flow.step
    def validate(run: Any) -> list[int]:
        return [1]

    @flow.map(validate, timeout=30)
    def price(item: int) -> int:
        return item

    @flow.step(validate, start_delay=4)
    def audit(run: Any, items: list[int]) -> None:
        return None

    @flow.step(price, audit, validate)
    def charge(run: Any, prices: list[int], audited: None, items: list[int]) -> int:
        return sum(prices)

    return flow


@pytest.fixture
def flows_url(pgflow_database_url: str) -> str:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        ensure_flow(conn, order_flow())
        conn.execute("SELECT pgflow.create_flow('bare')")  # a flow with no steps yet
    return pgflow_database_url


def test_flows_draws_every_flow(flows_url: str) -> None:
    result = run_cli("flows", "-d", flows_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "bare  max_attempts=3 base_delay=5s timeout=60s",
        "   (no steps)",
        "",
        "process_order  max_attempts=2 base_delay=1s timeout=60s",
        " 1 │ validate  single                  ◀── run input",
        " 2 │ price     map     timeout=30s     ◀── validate",
        "   │ audit     single  start_delay=4s  ◀── validate",
        " 3 │ charge    single                  ◀─┬─ audit",
        "   │                                     ├─ price",
        "   │                                     └─ validate",
    ]


def test_flows_json_has_steps_options_and_layers(flows_url: str) -> None:
    result = run_cli("flows", "process_order", "--json", "-d", flows_url)
    assert result.returncode == 0, result.stderr
    (shown,) = json.loads(result.stdout)["flows"]
    assert shown["flow_slug"] == "process_order"
    assert shown["options"] == {"max_attempts": 2, "base_delay": 1, "timeout": 60}
    assert shown["created_at"]
    unset = dict.fromkeys(("max_attempts", "base_delay", "timeout", "start_delay"))
    no_condition = {"when": None, "unless": None, "when_unmet": "skip", "when_exhausted": "fail"}
    assert shown["steps"] == [
        {
            "step_slug": "validate",
            "step_type": "single",
            "step_index": 0,
            "deps": [],
            "options": unset,
            **no_condition,
        },
        {
            "step_slug": "price",
            "step_type": "map",
            "step_index": 1,
            "deps": ["validate"],
            "options": {**unset, "timeout": 30},
            **no_condition,
        },
        {
            "step_slug": "audit",
            "step_type": "single",
            "step_index": 2,
            "deps": ["validate"],
            "options": {**unset, "start_delay": 4},
            **no_condition,
        },
        {
            "step_slug": "charge",
            "step_type": "single",
            "step_index": 3,
            "deps": ["audit", "price", "validate"],
            "options": unset,
            **no_condition,
        },
    ]
    assert shown["layers"] == [["validate"], ["price", "audit"], ["charge"]]


def test_flows_names_an_unknown_flow_and_says_when_there_are_none(
    flows_url: str, pgflow_database_url: str
) -> None:
    missing = run_cli("flows", "nope", "-d", flows_url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: flow 'nope' does not exist"
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("SELECT pgflow.delete_flow_and_data('bare')")
        conn.execute("SELECT pgflow.delete_flow_and_data('process_order')")
    assert run_cli("flows", "-d", flows_url).stdout == "no flows\n"
    assert json.loads(run_cli("flows", "--json", "-d", flows_url).stdout) == {"flows": []}
