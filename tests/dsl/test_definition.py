"""Every definition rule, with the exact error message (flow, step and rule named)."""

from __future__ import annotations

from typing import Any

import pytest

from pgflow import Context, Flow, FlowDefinitionError, job
from pgflow.dsl import StepSpec, order_steps


def _error(build: Any) -> str:
    with pytest.raises(FlowDefinitionError) as caught:
        build()
    return str(caught.value)


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("1abc", "flow '1abc': invalid flow slug: a slug must not start with a digit"),
        (
            "run",
            "flow 'run': invalid flow slug: 'run' is reserved (task inputs carry the run input "
            "under that key)",
        ),
        ("", "flow '': invalid flow slug: a slug must not be empty"),
        (
            "a-b",
            "flow 'a-b': invalid flow slug: a slug may contain only ASCII letters, digits and "
            "underscores",
        ),
        (
            "caf\u00e9",
            "flow 'caf\u00e9': invalid flow slug: a slug may contain only ASCII letters, digits "
            "and underscores",
        ),
        (
            "x'; DROP TABLE pgflow.runs; --",
            'flow "x\'; DROP TABLE pgflow.runs; --": invalid flow slug: a slug may contain only '
            "ASCII letters, digits and underscores",
        ),
    ],
)
def test_flow_slug_rules(slug: str, message: str) -> None:
    assert _error(lambda: Flow(slug)) == message


def test_slug_length_limit_is_128() -> None:
    assert Flow("a" * 128).slug == "a" * 128
    assert _error(lambda: Flow("a" * 129)) == (
        f"flow {'a' * 129!r}: invalid flow slug: a slug must be at most 128 characters "
        "(this one has 129)"
    )


def test_slugs_may_start_with_an_underscore() -> None:
    assert Flow("_private_1").slug == "_private_1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "flow 'f': option max_attempts must be >= 1, got 0"),
        ({"base_delay": 0}, "flow 'f': option base_delay must be >= 1, got 0"),
        ({"timeout": 2}, "flow 'f': option timeout must be >= 3, got 2"),
        ({"timeout": 1.5}, "flow 'f': option timeout must be an integer, got 1.5"),
        ({"max_attempts": True}, "flow 'f': option max_attempts must be an integer, got True"),
        ({"timeout": 2**31}, f"flow 'f': option timeout must fit in 32 bits, got {2**31}"),
    ],
)
def test_flow_option_ranges(options: dict[str, Any], message: str) -> None:
    assert _error(lambda: Flow("f", **options)) == message


def test_step_option_ranges() -> None:
    flow = Flow("f")

    def a(run: Any) -> int:
        return 1

    assert _error(lambda: flow.step(start_delay=-1)(a)) == (
        "flow 'f', step 'a': option start_delay must be >= 0, got -1"
    )
    assert _error(lambda: flow.step(max_attempts=0)(a)) == (
        "flow 'f', step 'a': option max_attempts must be >= 1, got 0"
    )
    assert _error(lambda: flow.step(colour=1)(a)) == (  # type: ignore[call-overload]
        "flow 'f', step 'a': unknown step option 'colour' (known: max_attempts, base_delay, "
        "timeout, start_delay)"
    )
    assert flow.step(start_delay=0, timeout=3, base_delay=1, max_attempts=1)(a).options == {
        "start_delay": 0,
        "timeout": 3,
        "base_delay": 1,
        "max_attempts": 1,
    }


def test_duplicate_step() -> None:
    flow = Flow("f")

    @flow.step
    def a(run: Any) -> int:
        return 1

    def again(run: Any) -> int:
        return 2

    assert _error(lambda: flow.step(slug="a")(again)) == (
        "flow 'f', step 'a': duplicate step slug (already defined)"
    )


def test_unknown_dependency() -> None:
    flow = Flow("f")

    def b(run: Any, x: Any) -> int:
        return 1

    assert _error(lambda: flow.step("nope")(b)) == (
        "flow 'f', step 'b': unknown dependency 'nope' (a step can only depend on steps "
        "defined before it)"
    )


def test_self_dependency() -> None:
    flow = Flow("f")

    def b(run: Any, x: Any) -> int:
        return 1

    assert _error(lambda: flow.step("b")(b)) == "flow 'f', step 'b': a step cannot depend on itself"


def test_dependency_from_another_flow() -> None:
    first, second = Flow("first"), Flow("second")

    @first.step
    def a(run: Any) -> int:
        return 1

    def b(run: Any, x: Any) -> int:
        return 1

    assert _error(lambda: second.step(a)(b)) == (
        "flow 'second', step 'b': dependency 'a' belongs to flow 'first'"
    )


def test_dependency_listed_twice() -> None:
    flow = Flow("f")

    @flow.step
    def a(run: Any) -> int:
        return 1

    def b(run: Any, x: Any, y: Any) -> int:
        return 1

    assert _error(lambda: flow.step(a, "a")(b)) == (
        "flow 'f', step 'b': dependency 'a' is listed twice"
    )


def test_map_with_two_dependencies() -> None:
    flow = Flow("f")

    @flow.array
    def a(run: Any) -> list[int]:
        return [1]

    @flow.array
    def b(run: Any) -> list[int]:
        return [2]

    def m(item: int) -> int:
        return item

    assert _error(lambda: flow.map(a, b)(m)) == (  # type: ignore[call-overload]
        "flow 'f', step 'm': a map step can have at most one dependency (the array it maps "
        "over), got 2: a, b"
    )


def test_cycles_in_a_definition_given_as_data() -> None:
    steps = [StepSpec("x", ("y",)), StepSpec("y", ("z",)), StepSpec("z", ("x",))]
    assert _error(lambda: order_steps("g", steps)) == (
        "flow 'g': the dependencies form a cycle: 'x' depends on 'y', which depends on 'z', "
        "which depends on 'x'"
    )


def test_definition_as_data_is_ordered_by_dependencies() -> None:
    steps = [StepSpec("c", ("a", "b")), StepSpec("a"), StepSpec("b", ("a",))]
    assert [s.slug for s in order_steps("g", steps)] == ["a", "b", "c"]
    assert _error(lambda: order_steps("g", [StepSpec("a"), StepSpec("a")])) == (
        "flow 'g', step 'a': duplicate step slug"
    )
    assert _error(lambda: order_steps("g", [StepSpec("a", ("b",))])) == (
        "flow 'g', step 'a': unknown dependency 'b' (a step can only depend on steps defined "
        "before it)"
    )
    assert _error(lambda: order_steps("g", [StepSpec("a", step_type="loop")])) == (
        "flow 'g', step 'a': step type must be 'single' or 'map', got 'loop'"
    )


def test_handler_that_cannot_take_the_input() -> None:
    flow = Flow("f")

    @flow.step
    def a(run: Any) -> int:
        return 1

    def too_few(run: Any) -> int:
        return 1

    def too_many(run: Any, x: Any, y: Any) -> int:
        return 1

    def needs_keyword(run: Any, *, flag: bool) -> int:
        return 1

    def nothing() -> int:
        return 1

    assert _error(lambda: flow.step(a)(too_few)) == (
        "flow 'f', step 'too_few': handler too_few(run) cannot take the input: it "
        "accepts 1 positional argument(s) but the step passes 2 (the run input and the output "
        "of 'a')"
    )
    assert _error(lambda: flow.step(a)(too_many)) == (
        "flow 'f', step 'too_many': handler too_many(run, x, y) cannot take the input: "
        "parameter 'y' would get no value (the step passes 2: the run input and "
        "the output of 'a'; a context parameter must be annotated Context or named ctx)"
    )
    assert _error(lambda: flow.step(needs_keyword)) == (
        "flow 'f', step 'needs_keyword': handler needs_keyword(run, *, flag) cannot take the "
        "input: keyword-only parameter 'flag' would get no value"
    )
    assert _error(lambda: flow.map(a)(nothing)) == (
        "flow 'f', step 'nothing': handler nothing() cannot take the input: it accepts "
        "0 positional argument(s) but the step passes 1 (one element of dependency 'a')"
    )


def test_array_step_must_be_annotated_as_a_list() -> None:
    flow = Flow("f")

    def not_a_list(run: Any) -> int:
        return 1

    assert _error(lambda: flow.array(not_a_list)) == (  # type: ignore[call-overload]
        "flow 'f', step 'not_a_list': an array step must return a list, but its handler is "
        "annotated to return int"
    )


def test_a_valid_flow_keeps_definition_order_and_shape() -> None:
    flow = Flow("shape", max_attempts=2)

    @flow.step
    def fetch(run: Any) -> list[int]:
        return [1, 2]

    @flow.map(fetch)
    async def each(item: int, ctx: Context) -> int:
        return item

    @flow.step(fetch, each, timeout=10)
    def join(run: Any, fetched: list[int], each_out: list[int]) -> int:
        return 0

    assert [s.slug for s in flow.steps] == ["fetch", "each", "join"]
    assert [s.index for s in flow.steps] == [0, 1, 2]
    assert flow["each"].step_type == "map"
    assert flow["each"].call.is_async
    assert flow["each"].call.context == "positional"
    assert flow["join"].dependencies == ("fetch", "each")
    assert flow.dependents("fetch") == ("each", "join")
    assert [s.slug for s in flow.leaf_steps] == ["join"]
    assert flow.options == {"max_attempts": 2}


def test_job_is_a_single_step_flow() -> None:
    @job(max_attempts=5, start_delay=2)
    def send_email(to: str, ctx: Context) -> None:
        return None

    assert send_email.slug == "send_email"
    assert [s.slug for s in send_email.flow.steps] == ["send_email"]
    assert send_email.flow.options == {"max_attempts": 5}
    assert send_email.step.options == {"start_delay": 2}

    @job
    async def plain(payload: dict[str, Any]) -> int:
        return 1

    assert plain.step.call.is_async
    assert _error(lambda: job(slug="run")(plain.handler)) == (
        "flow 'run': invalid flow slug: 'run' is reserved (task inputs carry the run input under "
        "that key)"
    )


def test_bind_handlers_checks_every_step_has_one() -> None:
    from pgflow.dsl import FlowDefinition, bind_handlers

    definition = FlowDefinition.from_data("rt", [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}])
    assert _error(lambda: bind_handlers(definition, {"a": lambda run: 1})) == (
        "flow 'rt': no handler for step(s) b"
    )
    assert _error(
        lambda: bind_handlers(
            definition, {"a": lambda run: 1, "b": lambda run, a: a, "c": lambda run: 0}
        )
    ) == ("flow 'rt': handlers for unknown step(s) c")
    assert _error(lambda: bind_handlers(definition, {"a": lambda run: 1, "b": lambda run: 2})) == (
        "flow 'rt', step 'b': handler <lambda>(run) cannot take the input: it accepts 1 "
        "positional argument(s) but the step passes 2 (the run input and the output of 'a')"
    )
    flow = bind_handlers(definition, {"a": lambda run: 1, "b": lambda run, a: a})
    assert [s.slug for s in flow.steps] == ["a", "b"]
