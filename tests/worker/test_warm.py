"""WarmConnection: a quiet worker's next call goes to the server process of its last one."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from pgflow.worker import _worker
from pgflow.worker._warm import WarmConnection

from .test_worker import _chains_one_at_a_time


@contextlib.asynccontextmanager
async def _pool(url: str, size: int = 3) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=size, max_size=size + 1, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


async def _pids(warm: WarmConnection, calls: int) -> list[int]:
    pids = []
    for _ in range(calls):
        async with warm.connection() as conn:
            await conn.execute("SELECT 1")
            pids.append(conn.info.backend_pid)
    return pids


async def test_a_quiet_workers_calls_go_to_one_server_process(pgflow_database_url: str) -> None:
    async with _pool(pgflow_database_url) as pool:
        warm = WarmConnection(pool)
        assert len(set(await _pids(warm, 6))) == 1
        await warm.close()
        assert pool.get_stats()["pool_available"] == 3


async def test_a_busy_worker_takes_its_connections_from_the_pool(pgflow_database_url: str) -> None:
    """The pool hands out the connection that waited longest: calls go round its connections."""
    async with _pool(pgflow_database_url) as pool:
        warm = WarmConnection(pool)
        warm.quiet = False
        assert len(set(await _pids(warm, 6))) == 3


async def test_overlapping_calls_get_connections_of_their_own(pgflow_database_url: str) -> None:
    async with _pool(pgflow_database_url) as pool:
        warm = WarmConnection(pool)
        [kept] = set(await _pids(warm, 1))
        async with warm.connection() as first, warm.connection() as second:
            assert first is not second
            assert first.info.backend_pid == kept
            other = second.info.backend_pid
        # The second went back while the first was out, to the pool; the first, back last
        # with nothing else out, is kept.
        assert await _pids(warm, 3) == [kept] * 3
        assert other != kept


async def test_a_broken_connection_is_given_back_not_kept(pgflow_database_url: str) -> None:
    async with _pool(pgflow_database_url) as pool:
        warm = WarmConnection(pool)
        [kept] = set(await _pids(warm, 2))
        async with await psycopg.AsyncConnection.connect(
            pgflow_database_url, autocommit=True
        ) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (kept,))
        await asyncio.sleep(0.2)
        with pytest.raises(psycopg.OperationalError):
            await _pids(warm, 1)
        # The pool replaced it; the next calls work, on another server process.
        pids = await _pids(warm, 3)
        assert kept not in pids
        assert len(set(pids)) == 1


async def test_an_error_in_the_call_gives_the_connection_back(pgflow_database_url: str) -> None:
    async with _pool(pgflow_database_url) as pool:
        warm = WarmConnection(pool)
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with warm.connection() as conn:
                await conn.execute("SELECT 1 / 0")
        assert pool.get_stats()["pool_available"] == 3
        assert len(await _pids(warm, 2)) == 2


async def test_an_idle_workers_reports_of_a_run_go_to_one_server_process(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chains run one at a time: each report (completing a hop and claiming the next) goes to
    the connection of the report before it. The check for delayed messages that the loop makes
    while a report is out takes another connection, and is not kept."""
    calls: list[tuple[str, int]] = []
    kinds = {"_claim", "_report_batch", "_idle_time"}

    class Recording(WarmConnection):
        @contextlib.asynccontextmanager
        async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
            stack = reversed(traceback.extract_stack())
            kind = next((f.name for f in stack if f.name in kinds), "other")
            async with super().connection() as conn:
                calls.append((kind, conn.info.backend_pid))
                yield conn

    monkeypatch.setattr(_worker, "WarmConnection", Recording)
    runs = 5
    await _chains_one_at_a_time(pgflow_database_url, runs, when_idle=calls.clear)
    reports = [pid for kind, pid in calls if kind == "_report_batch"]
    assert len(reports) == 3 * runs, calls
    for run in range(runs):
        assert len(set(reports[3 * run : 3 * run + 3])) == 1, calls
