"""How handlers are called: positional inputs, the optional context, pydantic at the boundary."""

from __future__ import annotations

import uuid
from typing import Any

import pydantic
import pytest

from pgflow import Context, Flow
from pgflow.dsl._handlers import to_json_value


class Order(pydantic.BaseModel):
    order_id: int
    items: list[str]


class Total(pydantic.BaseModel):
    amount: float


def _ctx() -> Context:
    return Context(
        run_id=uuid.uuid4(),
        flow_slug="f",
        step_slug="s",
        task_index=0,
        attempt=1,
        flow_input=None,
        input=None,
    )


def test_models_are_validated_and_dumped_at_the_boundary() -> None:
    flow = Flow("orders", input=Order)

    @flow.step
    def total(run: Order) -> Total:
        return Total(amount=float(len(run.items)))

    @flow.step(total)
    def label(run: Order, t: Total, *, ctx: Context) -> str:
        return f"{run.order_id}:{t.amount}:{ctx.step_slug}"

    call = flow["total"].call
    args, kwargs = call.arguments([{"order_id": 1, "items": ["a", "b"]}], None)
    assert args == [Order(order_id=1, items=["a", "b"])]
    assert kwargs == {}
    assert to_json_value(call.fn(*args)) == {"amount": 2.0}
    assert call.return_model is Total

    label_call = flow["label"].call
    assert label_call.context == "ctx"
    ctx = _ctx()
    args, kwargs = label_call.arguments([{"order_id": 7, "items": []}, {"amount": 2.5}], ctx)
    assert label_call.fn(*args, **kwargs) == "7:2.5:s"


def test_invalid_input_raises_a_validation_error() -> None:
    flow = Flow("orders", input=Order)

    @flow.step
    def total(run: Order) -> int:
        return 0

    with pytest.raises(pydantic.ValidationError, match="order_id"):
        flow["total"].call.arguments([{"order_id": "not a number"}], None)


def test_plain_values_pass_through_unchanged() -> None:
    flow = Flow("plain")

    @flow.step
    def echo(run: Any, context: Any) -> Any:
        return run

    call = flow["echo"].call
    assert call.context == "positional"
    for value in (0, False, "", None, [], {}, {"nested": [1, None]}):
        args, _ = call.arguments([value], _ctx())
        assert args[0] == value
        assert to_json_value(call.fn(*args)) == value


def test_callable_objects_and_defaults() -> None:
    class Handler:
        async def __call__(self, run: Any, extra: int = 3) -> int:
            return extra

    flow = Flow("objects")
    step = flow.step(slug="obj")(Handler())
    assert step.call.is_async
    assert step.call.context is None
    assert step.call.positional == 1
