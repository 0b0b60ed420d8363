"""AsyncClient against a real database: the same operations as Client, awaited."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from pgflow import (
    AsyncClient,
    Flow,
    FlowNotFoundError,
    InvalidInputError,
    RunNotFoundError,
    WaitTimeoutError,
    job,
)
from pgflow.worker import Worker


def slow_chain() -> Flow[Any]:
    flow = Flow("slow_chain", timeout=10)

    @flow.step
    async def one(run: Any) -> int:
        await asyncio.sleep(0.4)
        return 1

    @flow.step(one)
    async def two(run: Any, value: int) -> int:
        await asyncio.sleep(0.4)
        return value + 1

    @flow.step(two)
    async def three(run: Any, value: int) -> int:
        await asyncio.sleep(0.4)
        return value + 1

    return flow


@job
async def echo(payload: Any) -> Any:
    return payload


@pytest.fixture
async def aclient(pgflow_database_url: str) -> Any:
    async with AsyncClient(pgflow_database_url) as client:
        await client.ensure_flow(slow_chain())
        await client.ensure_flow(echo)
        yield client


async def test_start_flow_sync_waits_on_notifications_not_polling(
    aclient: AsyncClient, pgflow_database_url: str
) -> None:
    reads = 0
    original = aclient.get_run

    async def counting_get_run(run_id: uuid.UUID, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await original(run_id, **kwargs)

    aclient.get_run = counting_get_run  # type: ignore[method-assign]
    async with Worker([slow_chain()], database_url=pgflow_database_url, poll_interval=0.2):
        run = await aclient.start_flow_sync(slow_chain(), {}, timeout=30)
    assert run.output == {"three": 3}
    # One read before waiting and one after the run:completed event, however long the run
    # took (1.2 s here); a polling wait would have read the run every poll interval.
    assert reads == 2


async def test_events_and_reads(aclient: AsyncClient, pgflow_database_url: str) -> None:
    async with Worker([slow_chain()], database_url=pgflow_database_url, poll_interval=0.2):
        handle = await aclient.start_flow("slow_chain", {"n": 1})
        await asyncio.sleep(0.5)  # subscribe late: the first events are already past
        seen = [(e.event_type, e.step_slug) async for e in handle.events(timeout=30)]
    assert seen == [
        ("run:started", None),
        ("step:started", "one"),
        ("step:completed", "one"),
        ("step:started", "two"),
        ("step:completed", "two"),
        ("step:started", "three"),
        ("step:completed", "three"),
        ("run:completed", None),
    ]
    full = await aclient.get_run_with_states(handle.run_id)
    assert [s.status for s in full.steps] == ["completed"] * 3
    assert await aclient.get_step_output(handle.run_id, "two") == 2
    assert await aclient.get_flow_input(handle.run_id) == {"n": 1}
    page = await aclient.list_runs(flow=slow_chain(), status="completed")
    assert [r.run_id for r in page.runs] == [handle.run_id]


async def test_bulk_start_errors_and_timeouts(aclient: AsyncClient) -> None:
    handles = await aclient.start_flows(echo, [1, 2, 3])
    assert len(handles) == 3
    with pytest.raises(WaitTimeoutError):
        await handles[0].wait(timeout=0.2)
    with pytest.raises(FlowNotFoundError):
        await aclient.start_flow("missing", {})
    with pytest.raises(InvalidInputError):
        await aclient.start_flow(echo, float("nan"))
    with pytest.raises(RunNotFoundError):
        await aclient.get_run(uuid.uuid4())


async def test_inside_the_callers_async_transaction(
    aclient: AsyncClient, pgflow_database_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(pgflow_database_url) as conn:
        async with conn.transaction():
            kept = await aclient.enqueue(echo, "kept", conn=conn)
        with contextlib.suppress(LookupError):
            async with conn.transaction():
                dropped = await aclient.enqueue(echo, "dropped", conn=conn)
                raise LookupError("the application fails after starting the run")
    assert (await aclient.get_run(kept.run_id)).status == "started"
    with pytest.raises(RunNotFoundError):
        await aclient.get_run(dropped.run_id)


async def test_scheduling_maintenance_and_health(
    aclient: AsyncClient, pgflow_database_url: str
) -> None:
    later = await aclient.enqueue_in(echo, "later", timedelta(seconds=60))
    at = await aclient.enqueue_at(echo, "at", datetime.now(UTC) + timedelta(minutes=5))
    async with await psycopg.AsyncConnection.connect(pgflow_database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pgmq.q_echo WHERE vt > clock_timestamp() + interval '50 seconds'"
        )
        assert await cur.fetchone() == (2,)
    assert {later.run_id, at.run_id}
    report = await aclient.health_check()
    assert report.schema_up_to_date
    assert report.queue_depths == {"echo": 2, "slow_chain": 0}
    assert await aclient.recover_stalled_tasks() == []
    pruned = await aclient.prune(timedelta(days=1))
    assert pruned.runs == 0
    assert await aclient.flow_exists("echo")
    assert [f.flow_slug for f in await aclient.list_flows()] == ["echo", "slow_chain"]
    assert await aclient.delete_flow("echo")
    assert not await aclient.flow_exists("echo")


async def test_runtime_flow_definitions(aclient: AsyncClient) -> None:
    steps = [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}]
    assert (await aclient.upsert_flow("tenant_1", steps, timeout=9)).status == "created"
    assert (await aclient.upsert_flow("tenant_1", steps, timeout=10)).status == "updated"
    assert (await aclient.upsert_flow("tenant_1", steps, timeout=10)).status == "verified"
