"""Deliberate mistakes that mypy must report (one per marked line)."""

from __future__ import annotations

from typing import TypedDict

from pgflow import Flow


class Order(TypedDict):
    order_id: int


flow = Flow("orders", input=Order)


@flow.step
def count(run: Order) -> int:
    return 1


@flow.step(count)  # MYPY-ERROR: dependency count produces int, not str
def wrong_dep(run: Order, n: str) -> str:
    return n


@flow.map(count)  # MYPY-ERROR: a map needs a dependency that produces a list
def wrong_map(item: int) -> int:
    return item


@flow.step  # MYPY-ERROR: the flow input is Order, not str
def wrong_input(run: str) -> str:
    return run
