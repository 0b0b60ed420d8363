"""``AsyncMonitor``: the asynchronous twin of ``Monitor``, running the same operations of
:mod:`pgflow.monitor._operations` on async connections."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgflow.client import AsyncClient, PruneResult
from pgflow.monitor import _operations as ops
from pgflow.monitor._models import (
    FlowInfo,
    Metrics,
    QueueInfo,
    RunStatus,
    RunStatusPage,
    RunSummary,
    WorkerInfo,
)


class AsyncMonitor:
    """Read, async, how runs, steps, queues and workers are doing, straight from the pgflow tables.

    Connects like :class:`pgflow.AsyncClient`: a URL (it keeps a pool; None follows the configured
    database rule), a pool, or a connection.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
        max_pool_size: int = 10,
    ) -> None:
        # The client owns the connection plumbing; a monitor never listens.
        self._client = AsyncClient(
            database_url, pool=pool, conn=conn, listen=False, max_pool_size=max_pool_size
        )
        self._run = self._client._run

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncMonitor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def get_status(self, run_id: uuid.UUID, *, include_tasks: bool = False) -> RunStatus:
        """The run with its steps (and every task with ``include_tasks``); raises
        :class:`pgflow.errors.RunNotFoundError`."""
        return await self._run(ops.get_status(run_id, include_tasks=include_tasks))

    async def list_runs(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunStatusPage:
        """Runs started in ``[since, until)``, newest first; pass ``next_cursor`` back for the
        next page."""
        return await self._run(
            ops.list_runs(
                status=status, flow=flow, since=since, until=until, limit=limit, cursor=cursor
            )
        )

    async def history(self, *, limit: int = 50, since: datetime | None = None) -> list[RunSummary]:
        """Finished runs, the most recently finished first."""
        return await self._run(ops.history(limit=limit, since=since))

    async def cleanup_older_than(self, *, days: float) -> PruneResult:
        """Delete runs finished more than ``days`` ago (and what belongs to them)."""
        return await self._run(ops.cleanup_older_than(days=days))

    async def metrics(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        flow: str | None = None,
        top: int = 10,
    ) -> Metrics:
        """Counts, durations, failures and load of the runs started in ``[since, until)``
        (default: the last 24 hours)."""
        return await self._run(ops.metrics(since=since, until=until, flow=flow, top=top))

    async def workers(self, *, include_stopped: bool = False) -> list[WorkerInfo]:
        """Live workers; with ``include_stopped``, every registered one with its status."""
        return await self._run(ops.workers(include_stopped=include_stopped))

    async def queues(self) -> list[QueueInfo]:
        """Every flow's queue: depth, messages visible now, age of the oldest message."""
        return await self._run(ops.queues())

    async def flows(self) -> list[FlowInfo]:
        """Every flow with its options and steps."""
        return await self._run(ops.flows())
