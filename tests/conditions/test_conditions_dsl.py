"""Conditional steps in the DSL: options, validation at import, compilation, ensure_flow."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgflow import Flow
from pgflow.dsl import FlowDefinition, StepConditions, bind_handlers, compile_flow
from pgflow.errors import FlowDefinitionError, FlowShapeMismatchError
from pgflow.flows import ensure_flow


def _error(build: Any) -> str:
    with pytest.raises(FlowDefinitionError) as raised:
        build()
    return str(raised.value)


def branching_flow(**review_options: Any) -> Flow[Any]:
    flow = Flow("orders")

    @flow.step
    def score(run: Any) -> dict[str, Any]:
        return {"risk": "high" if run["amount"] > 100 else "low"}

    options = {"when": {"score": {"risk": "high"}}, **review_options}

    @flow.step(score, **options)
    def review(run: Any, score: dict[str, Any]) -> str:
        return "reviewed"

    @flow.step(score, unless={"score": {"risk": "high"}})
    def auto_approve(run: Any, score: dict[str, Any]) -> str:
        return "approved"

    @flow.step(review, auto_approve)
    def notify(run: Any, review: str | None, approved: str | None) -> str:
        return f"{review}/{approved}"

    return flow


def test_step_options_become_the_step_conditions() -> None:
    flow = branching_flow(when_exhausted="skip-cascade")
    assert flow["review"].conditions == StepConditions(
        when={"score": {"risk": "high"}}, when_exhausted="skip-cascade"
    )
    assert flow["auto_approve"].conditions.unless == {"score": {"risk": "high"}}
    assert flow["score"].conditions == StepConditions()


def test_compile_adds_only_the_conditions_that_are_set() -> None:
    statements = compile_flow(branching_flow(when_unmet="fail"))
    assert statements == [
        "SELECT pgflow.create_flow('orders');",
        "SELECT pgflow.add_step('orders', 'score');",
        "SELECT pgflow.add_step('orders', 'review', ARRAY['score'], "
        """required_input_pattern => '{"score": {"risk": "high"}}'::jsonb, """
        "when_unmet => 'fail');",
        "SELECT pgflow.add_step('orders', 'auto_approve', ARRAY['score'], "
        """forbidden_input_pattern => '{"score": {"risk": "high"}}'::jsonb);""",
        "SELECT pgflow.add_step('orders', 'notify', ARRAY['review', 'auto_approve']);",
    ]


def test_compiled_patterns_quote_their_text() -> None:
    flow = Flow("q")

    @flow.step(when={"name": "O'Brien"})
    def a(run: Any) -> None: ...

    (_, statement) = compile_flow(flow)
    assert """'{"name": "O''Brien"}'::jsonb""" in statement


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"when": ["a"]}, "when= must be a JSON object (a dict), got list"),
        ({"unless": {"a": {1, 2}}}, "unless= must be JSON-serialisable"),
        ({"when": {"a": float("nan")}}, "when= must be JSON-serialisable"),
        ({"when": {1: "a"}}, "when= keys must be strings"),
        ({"when": {}, "when_unmet": "ignore"}, "when_unmet must be one of 'fail', 'skip'"),
        ({"when_exhausted": "retry"}, "when_exhausted must be one of"),
        ({"when_unmet": "skip"}, "when_unmet has no effect without a condition"),
    ],
)
def test_invalid_conditions_fail_at_definition(options: dict[str, Any], message: str) -> None:
    flow = Flow("f")

    def define() -> None:
        @flow.step(**options)
        def a(run: Any) -> None: ...

    error = _error(define)
    assert error.startswith("flow 'f', step 'a': ")
    assert message in error
    assert "a" not in flow  # nothing was added


def test_a_pattern_key_must_name_a_dependency() -> None:
    flow = Flow("f")

    @flow.step
    def a(run: Any) -> int:
        return 1

    def define() -> None:
        @flow.step(a, when={"typo": 1})
        def b(run: Any, a: int) -> None: ...

    assert _error(define) == (
        "flow 'f', step 'b': when= is matched against the outputs of the dependencies, keyed "
        "by slug; 'typo' is not a dependency (dependencies: a)"
    )


def test_a_root_map_cannot_have_a_condition() -> None:
    flow: Flow[list[int]] = Flow("f")

    def define() -> None:
        @flow.map(when={"x": 1})
        def each(n: int) -> int:
            return n

    assert "a root map step cannot have a condition" in _error(define)


def test_a_parameter_of_a_dependency_skipped_alone_must_allow_none() -> None:
    flow = Flow("f")

    @flow.step(when={"go": True})
    def a(run: Any) -> int:
        return 1

    def define() -> None:
        @flow.step(a)
        def b(run: Any, value: int) -> None: ...

    assert _error(define) == (
        "flow 'f', step 'b': parameter 'value' gets None when step 'a' is skipped, but its "
        "annotation does not allow None: make it Optional (`... | None`)"
    )

    @flow.step(a)
    def c(run: Any, value: int | None) -> None: ...

    @flow.step(a)
    def d(run: Any, value) -> None:  # type: ignore[no-untyped-def]  # unannotated: accepted
        ...

    # skip-cascade never hands a None to a dependent: it is skipped with its dependency.
    @flow.step(when={"go": True}, when_unmet="skip-cascade")
    def e(run: Any) -> int:
        return 1

    @flow.step(e)
    def g(run: Any, value: int) -> None: ...

    @flow.step(when_exhausted="skip")
    def h(run: Any) -> int:
        return 1

    def define_after_exhaustion() -> None:
        @flow.step(h)
        def i(run: Any, value: int) -> None: ...

    assert "parameter 'value' gets None when step 'h' is skipped" in _error(define_after_exhaustion)


def test_definitions_from_data_carry_conditions_and_bind_handlers() -> None:
    definition = FlowDefinition.from_data(
        "f",
        [
            {"slug": "a"},
            {"slug": "b", "depends_on": ["a"], "when": {"a": 1}, "when_unmet": "skip-cascade"},
            {"slug": "c", "when_exhausted": "skip"},
        ],
    )
    assert definition.steps[1].conditions == StepConditions(
        when={"a": 1}, when_unmet="skip-cascade"
    )
    flow = bind_handlers(definition, {slug: lambda *args: None for slug in "abc"})
    assert flow["b"].conditions == definition.steps[1].conditions
    assert flow["c"].conditions.when_exhausted == "skip"
    assert (
        _error(lambda: FlowDefinition.from_data("f", [{"slug": "a", "unless": "x"}]))
        == "flow 'f', step 'a': unless= must be a JSON object (a dict), got str"
    )


def test_ensure_flow_compares_conditions_as_shape(pgflow_conn: psycopg.Connection[Any]) -> None:
    assert ensure_flow(pgflow_conn, branching_flow()).status == "created"
    assert ensure_flow(pgflow_conn, branching_flow()).status == "verified"
    with pytest.raises(FlowShapeMismatchError) as raised:
        ensure_flow(pgflow_conn, branching_flow(when_unmet="fail", when={"score": {"risk": "x"}}))
    assert raised.value.differences == [
        "step 'review': when differs: code {'score': {'risk': 'x'}}, "
        "database {'score': {'risk': 'high'}}",
        "step 'review': when_unmet differs: code 'fail', database 'skip'",
    ]
    result = ensure_flow(pgflow_conn, branching_flow(when_exhausted="skip"), recreate=True)
    assert result.status == "recreated"
    row = pgflow_conn.execute(
        "SELECT when_exhausted FROM pgflow.steps WHERE step_slug = 'review'"
    ).fetchone()
    assert row == {"when_exhausted": "skip"}
