"""Transactional steps: the handler's writes commit with the task's completion, or not at all."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from pgflow import Context, Flow, job
from pgflow.worker import Worker

from .conftest import rows, start_run, wait_for_run

FAST = {"poll_interval": 0.2, "heartbeat_interval": 0.5, "summary_interval": 3600}


@pytest.fixture
def ledger(pgflow_database_url: str) -> str:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (note text)")
    return pgflow_database_url


async def test_async_handler_writes_commit_with_the_task(ledger: str) -> None:
    @job(transactional=True)
    async def record(payload: Any, ctx: Context) -> str:
        await ctx.conn.execute("INSERT INTO ledger VALUES (%s)", (payload["note"],))
        return "recorded"

    async with Worker([record], database_url=ledger, **FAST):
        run = await wait_for_run(ledger, await start_run(ledger, "record", {"note": "hello"}))
    assert run["status"] == "completed"
    assert rows(ledger, "SELECT note FROM ledger") == [{"note": "hello"}]


async def test_async_handler_failure_rolls_its_writes_back(ledger: str) -> None:
    @job(transactional=True, max_attempts=2, base_delay=1)
    async def half_done(payload: Any, ctx: Context) -> None:
        await ctx.conn.execute("INSERT INTO ledger VALUES (%s)", (f"attempt {ctx.attempt}",))
        raise RuntimeError("after writing")

    async with Worker([half_done], database_url=ledger, **FAST):
        run = await wait_for_run(ledger, await start_run(ledger, "half_done", {}), timeout=20)
    assert run["status"] == "failed"
    assert rows(ledger, "SELECT note FROM ledger") == []


async def test_sync_handler_writes_commit_with_the_task(ledger: str) -> None:
    flow = Flow("sync_tx")

    @flow.step(transactional=True)
    def write(run: Any, ctx: Context) -> int:
        ctx.conn.execute("INSERT INTO ledger VALUES ('sync')")
        return 1

    @flow.step(write)
    def after(run: Any, value: int) -> int:
        return value + 1

    async with Worker([flow], database_url=ledger, **FAST):
        run = await wait_for_run(ledger, await start_run(ledger, "sync_tx", {}))
    assert run["output"] == {"after": 2}
    assert rows(ledger, "SELECT note FROM ledger") == [{"note": "sync"}]


async def test_sync_handler_past_its_timeout_never_commits(ledger: str) -> None:
    @job(transactional=True, timeout=3, max_attempts=1)
    def slow_writer(payload: Any, ctx: Context) -> str:
        ctx.conn.execute("INSERT INTO ledger VALUES ('too late')")
        time.sleep(4.5)
        return "finished anyway"

    async with Worker([slow_writer], database_url=ledger, **FAST):
        run = await wait_for_run(ledger, await start_run(ledger, "slow_writer", {}), timeout=20)
        assert run["status"] == "failed"
        await asyncio.sleep(2.5)  # the abandoned thread finishes meanwhile
    (task,) = rows(ledger, "SELECT status, error_message FROM pgflow.step_tasks")
    assert task["status"] == "failed"
    assert "exceeded its timeout of 3 s" in task["error_message"]
    assert rows(ledger, "SELECT note FROM ledger") == []
