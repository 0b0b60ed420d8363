"""The README's typed style: this module must pass mypy --strict."""

from __future__ import annotations

from typing import TypedDict

from pgflow import Context, Flow, job


class Order(TypedDict):
    order_id: int
    items: list[str]


class Receipt(TypedDict):
    order_id: int
    total: float


flow = Flow("process_order", input=Order, max_attempts=3, timeout=60)


@flow.step
def validate(run: Order) -> list[str]:
    return [item.strip() for item in run["items"]]


@flow.map(validate, timeout=30)
async def price(item: str) -> float:
    return float(len(item))


@flow.step(validate, price)
def charge(run: Order, items: list[str], prices: list[float], ctx: Context) -> Receipt:
    ctx.logger.info("charging %s items", len(items))
    return {"order_id": run["order_id"], "total": sum(prices)}


@flow.step(charge, base_delay=2)
async def notify(run: Order, receipt: Receipt) -> str:
    return f"order {receipt['order_id']}: {receipt['total']:.2f}"


numbers: Flow[list[int]] = Flow("squares")


@numbers.map()
def square(n: int) -> int:
    return n * n


@numbers.step(square)
def total(run: list[int], squares: list[int]) -> int:
    return sum(squares)


@job(max_attempts=5)
def send_email(to: str, ctx: Context) -> None:
    ctx.logger.info("sending to %s", to)
