"""``Monitor``: the synchronous monitoring API. Every method runs an operation of
:mod:`pgflow.monitor._operations`; ``AsyncMonitor`` runs the very same ones."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from pgflow.client import Client, PruneResult
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


class Monitor:
    """Read how runs, steps, queues and workers are doing, straight from the pgflow tables.

    Connects like :class:`pgflow.Client`: a URL (it keeps a pool; None follows the configured
    database rule), a pool, or a connection.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        conn: psycopg.Connection[Any] | None = None,
        max_pool_size: int = 10,
    ) -> None:
        # The client owns the connection plumbing; a monitor never listens.
        self._client = Client(
            database_url, pool=pool, conn=conn, listen=False, max_pool_size=max_pool_size
        )
        self._run = self._client._run

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def get_status(self, run_id: uuid.UUID, *, include_tasks: bool = False) -> RunStatus:
        """The run with its steps (and every task with ``include_tasks``); raises
        :class:`pgflow.errors.RunNotFoundError`."""
        return self._run(ops.get_status(run_id, include_tasks=include_tasks))

    def list_runs(
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
        return self._run(
            ops.list_runs(
                status=status, flow=flow, since=since, until=until, limit=limit, cursor=cursor
            )
        )

    def history(self, *, limit: int = 50, since: datetime | None = None) -> list[RunSummary]:
        """Finished runs, the most recently finished first."""
        return self._run(ops.history(limit=limit, since=since))

    def cleanup_older_than(self, *, days: float) -> PruneResult:
        """Delete runs finished more than ``days`` ago (and what belongs to them)."""
        return self._run(ops.cleanup_older_than(days=days))

    def metrics(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        flow: str | None = None,
        top: int = 10,
    ) -> Metrics:
        """Counts, durations, failures and load of the runs started in ``[since, until)``
        (default: the last 24 hours)."""
        return self._run(ops.metrics(since=since, until=until, flow=flow, top=top))

    def workers(self, *, include_stopped: bool = False) -> list[WorkerInfo]:
        """Live workers; with ``include_stopped``, every registered one with its status."""
        return self._run(ops.workers(include_stopped=include_stopped))

    def queues(self) -> list[QueueInfo]:
        """Every flow's queue: depth, messages visible now, age of the oldest message."""
        return self._run(ops.queues())

    def flows(self) -> list[FlowInfo]:
        """Every flow with its options and steps."""
        return self._run(ops.flows())
