"""Cancel, retry and resume end to end: a real worker runs the handlers, a client controls."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest

from pgflow import Context, Flow
from pgflow.client import AsyncClient, Client
from pgflow.testing._worker import running_worker
from pgflow.worker import Worker
from tests.worker.conftest import rows


def _blocking_flow(
    calls: Counter[str], seen: dict[str, float], release: threading.Event
) -> Flow[Any]:
    """before -> hold: hold waits until its run is cancelled (or it is released)."""
    flow = Flow("holding", timeout=60, max_attempts=1)

    @flow.step
    def before(run: Any) -> str:
        calls["before"] += 1
        return "ready"

    @flow.step(before)
    def hold(run: Any, ready: str, ctx: Context) -> str:
        calls["hold"] += 1
        seen["started"] = time.monotonic()
        while not release.is_set():
            if ctx.cancellation.wait(0.01):
                seen["cancelled"] = time.monotonic()
                return "stopped early"
        return "released"

    return flow


def _wait_for(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("listen", [True, False], ids=["listen", "polling"])
def test_cancel_reaches_the_running_handler_within_a_second_then_resume(
    pgflow_database_url: str, listen: bool
) -> None:
    calls: Counter[str] = Counter()
    seen: dict[str, float] = {}
    release = threading.Event()
    flow = _blocking_flow(calls, seen, release)
    with (
        running_worker([flow], pgflow_database_url, listen=listen) as worker,
        Client(pgflow_database_url) as client,
    ):
        if listen:
            _wait_for(lambda: worker.listening)
        run = client.start_flow(flow, {"n": 1}).started
        _wait_for(lambda: "started" in seen)

        asked = time.monotonic()
        cancelled = client.cancel_run(run.run_id, "enough")
        _wait_for(lambda: "cancelled" in seen, timeout=5)

        assert seen["cancelled"] - asked < 1.0
        assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "enough")
        assert cancelled.is_terminal
        assert client.wait(run.run_id, timeout=5).status == "cancelled"
        # The handler's own report came and changed nothing.
        _wait_for(lambda: worker.stats.completed >= 2)
        hold_task = rows(
            pgflow_database_url,
            "SELECT status, output FROM pgflow.step_tasks WHERE run_id = %s AND step_slug = 'hold'",
            (run.run_id,),
        )
        assert hold_task == [{"status": "cancelled", "output": None}]
        assert rows(pgflow_database_url, "SELECT * FROM pgmq.q_holding") == []

        release.set()
        resumed = client.resume_run(run.run_id)
        assert (resumed.status, resumed.resumed_count) == ("started", 1)
        done = client.wait(run.run_id, timeout=20)
    assert (done.status, done.output) == ("completed", {"hold": "released"})
    assert calls == {"before": 1, "hold": 2}


def _flaky_chain(calls: Counter[str], broken: threading.Event) -> Flow[Any]:
    flow = Flow("flaky", max_attempts=1, timeout=10)

    @flow.step
    def first(run: Any) -> int:
        calls["first"] += 1
        return int(run["n"])

    @flow.step(first)
    def second(run: Any, value: int) -> int:
        calls["second"] += 1
        if broken.is_set():
            raise RuntimeError("second is broken")
        return value + 1

    @flow.step(second)
    def third(run: Any, value: int) -> int:
        calls["third"] += 1
        return value * 10

    return flow


def test_retry_of_a_failed_run_completes_as_a_new_run(pgflow_database_url: str) -> None:
    calls: Counter[str] = Counter()
    broken = threading.Event()
    broken.set()
    flow = _flaky_chain(calls, broken)
    with running_worker([flow], pgflow_database_url), Client(pgflow_database_url) as client:
        failed = client.start_flow_sync(flow, {"n": 4}, timeout=20)
        assert failed.status == "failed"
        broken.clear()
        retried = client.retry_run(failed.run_id)
        done = client.wait(retried.run_id, timeout=20)
        original = client.get_run(failed.run_id)
    assert (done.status, done.output, done.retry_of) == ("completed", {"third": 50}, failed.run_id)
    assert retried.run_id != failed.run_id
    assert original.status == "failed"
    assert calls == {"first": 2, "second": 2, "third": 1}


async def test_resume_of_a_failed_run_runs_only_what_did_not_complete(
    pgflow_database_url: str,
) -> None:
    calls: Counter[str] = Counter()
    broken = threading.Event()
    broken.set()
    flow = _flaky_chain(calls, broken)
    async with (
        Worker([flow], database_url=pgflow_database_url, poll_interval=0.2),
        AsyncClient(pgflow_database_url) as client,
    ):
        failed = await client.start_flow_sync(flow, {"n": 4}, timeout=20)
        assert failed.status == "failed"
        broken.clear()
        resumed = await client.resume_run(failed.run_id)
        done = await client.wait(failed.run_id, timeout=20)
    assert resumed.run_id == failed.run_id
    assert (done.status, done.output, done.resumed_count) == ("completed", {"third": 50}, 1)
    assert calls == {"first": 1, "second": 2, "third": 1}


async def test_an_async_handler_sees_the_cancellation(pgflow_database_url: str) -> None:
    flow = Flow("async_hold", timeout=60)
    started = asyncio.Event()
    noticed: list[float] = []

    @flow.step
    async def hold(run: Any, ctx: Context) -> str:
        started.set()
        while not ctx.cancelled:
            await asyncio.sleep(0.01)
        noticed.append(time.monotonic())
        return "stopped"

    async with (
        Worker([flow], database_url=pgflow_database_url, poll_interval=0.2),
        AsyncClient(pgflow_database_url) as client,
    ):
        handle = await client.start_flow(flow, {})
        await asyncio.wait_for(started.wait(), 20)
        asked = time.monotonic()
        await client.cancel_run(handle.run_id)
        run = await client.wait(handle.run_id, timeout=5)
        for _ in range(200):
            if noticed:
                break
            await asyncio.sleep(0.01)
    assert run.status == "cancelled"
    assert noticed
    assert noticed[0] - asked < 1.0
