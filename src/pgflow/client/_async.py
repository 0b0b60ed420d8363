"""``AsyncClient``: the asynchronous twin of ``Client``, running the same operations of
:mod:`pgflow.client._operations` on async connections."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgflow import _flow_ops, _schedule_ops
from pgflow._ops import Operation, arun
from pgflow._schedule_ops import Schedule
from pgflow.client import _operations as ops
from pgflow.client._models import HealthReport, PruneResult, Run, RunPage, RunWithStates
from pgflow.client._sync import _pool_conninfo
from pgflow.client._timing import check_when, deadline_after, remaining
from pgflow.dsl._definition import FlowDefinition, definition_of
from pgflow.dsl._schedule import DEFAULT_MAX_CATCH_UP
from pgflow.errors import WaitTimeoutError
from pgflow.events import RESYNC, AsyncEventHub, RunEvent

T = TypeVar("T")


class AsyncRunHandle:
    """A started run: await it, follow its events, or read its state."""

    def __init__(self, client: AsyncClient, run: Run) -> None:
        self.client = client
        self.run_id = run.run_id
        self.flow_slug = run.flow_slug
        self.started = run

    async def wait(self, timeout: float | None = None) -> Run:
        return await self.client.wait(self.run_id, timeout=timeout)

    def events(self, timeout: float | None = None) -> AsyncIterator[RunEvent]:
        return self.client.events(self.run_id, timeout=timeout)

    async def get(self) -> Run:
        return await self.client.get_run(self.run_id)

    def __repr__(self) -> str:
        return f"<AsyncRunHandle {self.flow_slug} {self.run_id}>"


class AsyncClient:
    """Start and inspect runs, async. Give it a URL (it keeps a pool, opened on first use), a
    pool, or a connection.

    Methods accept ``conn=`` to run inside the caller's transaction: open one first (``with
    conn.transaction():``) and the start commits or rolls back with the application's writes.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
        listen: bool = True,
        poll_interval: float = 0.5,
        max_pool_size: int = 10,
    ) -> None:
        given = sum(x is not None for x in (database_url, pool, conn))
        if given > 1:
            raise ValueError("give the client one of database_url, pool or conn")
        if given == 0:
            from pgflow._db import resolve_url

            database_url = resolve_url()
        self._own_pool = pool is None and conn is None
        self._pool = pool
        if self._own_pool:
            assert database_url is not None
            self._pool = AsyncConnectionPool(
                database_url,
                min_size=1,
                max_size=max_pool_size,
                kwargs={"autocommit": True},
                open=False,
                name="pgflow-client",
            )
        self._opened = False
        self._conn = conn
        self._url = database_url or (_pool_conninfo(pool) if pool is not None else None)
        self.listen = listen and self._url is not None
        self.poll_interval = poll_interval
        self._hub: AsyncEventHub | None = None

    # -- plumbing -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _connection(
        self, conn: psycopg.AsyncConnection[Any] | None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if conn is not None:
            yield conn
        elif self._conn is not None:
            yield self._conn
        else:
            assert self._pool is not None
            if self._own_pool and not self._opened:
                await self._pool.open(wait=True)
                self._opened = True
            async with self._pool.connection() as pooled:
                yield pooled

    async def _run(self, op: Operation[T], conn: psycopg.AsyncConnection[Any] | None = None) -> T:
        async with self._connection(conn) as connection:
            return await arun(connection, op)

    def _events(self) -> AsyncEventHub:
        if self._hub is None:
            assert self._url is not None
            self._hub = AsyncEventHub(self._url)
        return self._hub

    async def close(self) -> None:
        if self._hub is not None:
            await self._hub.close()
        if self._own_pool and self._pool is not None and self._opened:
            await self._pool.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- starting -------------------------------------------------------------------------------
    async def start_flow(
        self,
        flow: ops.FlowRef,
        input: Any,
        *,
        run_id: uuid.UUID | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> AsyncRunHandle:
        """Start a run; returns at once with a handle (``.wait()``, ``.events()``)."""
        return (await self._start(flow, [input], [run_id], None, conn))[0]

    async def start_flows(
        self,
        flow: ops.FlowRef,
        inputs: Iterable[Any],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> list[AsyncRunHandle]:
        """Start one run per input, in one round trip."""
        payloads = list(inputs)
        return await self._start(flow, payloads, [None] * len(payloads), None, conn)

    async def start_flow_sync(
        self,
        flow: ops.FlowRef,
        input: Any,
        *,
        run_id: uuid.UUID | None = None,
        timeout: float | None = None,
    ) -> Run:
        """Start a run and wait for it to finish (completed, failed or cancelled)."""
        handle = await self.start_flow(flow, input, run_id=run_id)
        return await handle.wait(timeout)

    async def enqueue(
        self, job: ops.FlowRef, input: Any, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> AsyncRunHandle:
        """Run a job (or any flow) as soon as a worker is free."""
        return await self.start_flow(job, input, conn=conn)

    async def enqueue_in(
        self,
        job: ops.FlowRef,
        input: Any,
        seconds: float | timedelta,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> AsyncRunHandle:
        """Run a job after ``seconds``: no worker sees its task before then."""
        delay = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        return (await self._start(job, [input], [None], check_when(delay), conn))[0]

    async def enqueue_at(
        self,
        job: ops.FlowRef,
        input: Any,
        when: datetime,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> AsyncRunHandle:
        """Run a job at ``when`` (timezone-aware; a time in the past runs now)."""
        return (await self._start(job, [input], [None], check_when(when), conn))[0]

    async def _start(
        self,
        flow: ops.FlowRef,
        inputs: Sequence[Any],
        run_ids: Sequence[uuid.UUID | None],
        visible_at: datetime | float | None,
        conn: psycopg.AsyncConnection[Any] | None,
    ) -> list[AsyncRunHandle]:
        payloads = [ops.prepare_input(flow, value) for value in inputs]
        runs = await self._run(
            ops.start_flows(ops.flow_slug(flow), payloads, run_ids, visible_at=visible_at), conn
        )
        return [AsyncRunHandle(self, r) for r in runs]

    # -- waiting and following ------------------------------------------------------------------
    async def wait(self, run_id: uuid.UUID, *, timeout: float | None = None) -> Run:
        """The run once it is completed, failed or cancelled. Woken by LISTEN/NOTIFY; polls
        only when notifications are unavailable. Raises :class:`WaitTimeoutError` after
        ``timeout``."""
        deadline = deadline_after(timeout)
        if not self.listen:
            while True:
                found = await self.get_run(run_id)
                if found.is_terminal:
                    return found
                left = remaining(deadline)
                if left is not None and left <= 0:
                    raise WaitTimeoutError(f"run {run_id} is still {found.status} after {timeout}s")
                await asyncio.sleep(
                    min(self.poll_interval, left) if left is not None else self.poll_interval
                )
        async with self._events().subscribe(run_id) as sink:
            while True:
                found = await self.get_run(run_id)
                if found.is_terminal:
                    return found
                while True:
                    left = remaining(deadline)
                    if left is not None and left <= 0:
                        raise WaitTimeoutError(
                            f"run {run_id} is still {found.status} after {timeout}s"
                        )
                    # A long safety interval: events carry the news; this only guards against a
                    # listener that is down and has not noticed yet.
                    try:
                        item = await asyncio.wait_for(
                            sink.get(), min(left, 5.0) if left is not None else 5.0
                        )
                    except TimeoutError:
                        break
                    if item is RESYNC or item.is_terminal:
                        break

    async def events(
        self, run_id: uuid.UUID, *, timeout: float | None = None
    ) -> AsyncIterator[RunEvent]:
        """Every event of one run, from its start until it completes or fails (or ``timeout``
        passes): those that happened before the call are rebuilt from the tables, then live
        ones follow as they happen."""
        if not self.listen:
            raise RuntimeError("events need LISTEN: this client was made with listen=False")
        deadline = deadline_after(timeout)
        seen: set[tuple[str, str | None]] = set()
        async with self._events().subscribe(run_id) as sink:
            while True:
                # Catch up from the tables (at first, and whenever events may have been lost).
                for past in await self._run(ops.past_events(run_id)):
                    if (past.event_type, past.step_slug) not in seen:
                        seen.add((past.event_type, past.step_slug))
                        yield past
                        if past.is_terminal:
                            return
                while True:
                    left = remaining(deadline)
                    if left is not None and left <= 0:
                        raise WaitTimeoutError(f"run {run_id} did not finish within {timeout}s")
                    try:
                        item = await asyncio.wait_for(
                            sink.get(), min(left, 5.0) if left is not None else 5.0
                        )
                    except TimeoutError:
                        break
                    if item is RESYNC:
                        break
                    if (item.event_type, item.step_slug) in seen:
                        continue
                    seen.add((item.event_type, item.step_slug))
                    yield item
                    if item.is_terminal:
                        return

    # -- run control ----------------------------------------------------------------------------
    async def cancel_run(
        self,
        run_id: uuid.UUID,
        reason: str | None = None,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> Run:
        """Cancel a started run: it ends 'cancelled' with ``reason``, its queued and running
        tasks are cancelled and their messages archived, and workers running them see
        ``ctx.cancelled``. Late reports of those tasks change nothing. Raises
        :class:`RunNotFoundError`, or :class:`RunStateError` for a run that has finished."""
        return await self._run(ops.cancel_run(run_id, reason), conn)

    async def retry_run(
        self, run_id: uuid.UUID, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Run:
        """Start a failed or cancelled run again from scratch: returns the new run (same flow
        and input, ``retry_of`` = ``run_id``); the original is kept as it is."""
        return await self._run(ops.retry_run(run_id), conn)

    async def resume_run(
        self, run_id: uuid.UUID, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Run:
        """Continue a failed or cancelled run (same run id): completed steps keep their
        outputs, every other step runs again; returns the run, started again."""
        return await self._run(ops.resume_run(run_id), conn)

    # -- reading --------------------------------------------------------------------------------
    async def get_run(
        self, run_id: uuid.UUID, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Run:
        return await self._run(ops.get_run(run_id), conn)

    async def get_run_with_states(
        self, run_id: uuid.UUID, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> RunWithStates:
        return await self._run(ops.get_run_with_states(run_id), conn)

    async def get_step_output(
        self, run_id: uuid.UUID, step_slug: str, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Any:
        return await self._run(ops.get_step_output(run_id, step_slug), conn)

    async def get_flow_input(
        self, run_id: uuid.UUID, *, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Any:
        return await self._run(ops.get_flow_input(run_id), conn)

    async def list_runs(
        self,
        *,
        flow: ops.FlowRef | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        slug = ops.flow_slug(flow) if flow is not None else None
        return await self._run(
            ops.list_runs(
                flow=slug, status=status, since=since, until=until, limit=limit, cursor=cursor
            )
        )

    # -- maintenance ----------------------------------------------------------------------------
    async def prune(
        self, older_than: timedelta, flows: Sequence[ops.FlowRef] | None = None
    ) -> PruneResult:
        slugs = [ops.flow_slug(f) for f in flows] if flows is not None else None
        return await self._run(ops.prune(older_than, slugs))

    async def recover_stalled_tasks(
        self, margin: float = 30.0, max_requeues: int = 3
    ) -> list[dict[str, Any]]:
        return await self._run(ops.recover_stalled_tasks(margin, max_requeues))

    async def health_check(self, *, connect_timeout: int = 5) -> HealthReport:
        """Reachability (a fresh connection, not a pooled one), schema version, pgmq, live
        workers and queue depths per flow; ``.healthy`` sums it up."""
        try:
            if self._url is None:
                return await self._run(ops.health_check())
            async with await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=connect_timeout
            ) as conn:
                return await arun(conn, ops.health_check())
        except psycopg.OperationalError as exc:
            return HealthReport(database=False, problems=(f"database unreachable: {exc}",))

    # -- flow definitions -----------------------------------------------------------------------
    async def ensure_flow(
        self, flow: ops.FlowRef, *, recreate: bool = False
    ) -> _flow_ops.EnsureResult:
        assert not isinstance(flow, str), "ensure_flow needs the flow's definition, not a slug"
        return await self._run(_flow_ops.ensure_flow(definition_of(flow), recreate=recreate))

    async def upsert_flow(
        self,
        slug: str,
        steps: Iterable[Mapping[str, Any]],
        *,
        recreate: bool = False,
        **options: int,
    ) -> _flow_ops.EnsureResult:
        definition = FlowDefinition.from_data(slug, steps, options)
        return await self._run(_flow_ops.ensure_flow(definition, recreate=recreate))

    async def delete_flow(self, slug: str) -> bool:
        return await self._run(_flow_ops.delete_flow(slug))

    async def flow_exists(self, slug: str) -> bool:
        return await self._run(_flow_ops.flow_exists(slug))

    async def list_flows(self) -> list[_flow_ops.FlowSummary]:
        return await self._run(_flow_ops.list_flows())

    # -- schedules ------------------------------------------------------------------------------
    async def schedule(
        self,
        flow: ops.FlowRef,
        cron: str,
        *,
        input: Any = None,
        name: str | None = None,
        timezone: str = "UTC",
        max_catch_up: int = DEFAULT_MAX_CATCH_UP,
        enabled: bool = True,
    ) -> Schedule:
        """Create or replace the schedule ``name`` (default: the flow's slug): workers serving
        the flow start a run with ``input`` at every occurrence of ``cron`` in ``timezone``,
        each exactly once. After downtime at most ``max_catch_up`` missed occurrences are
        fired, the most recent ones. Changing the cron or time zone restarts it from now."""
        return await self._run(
            _schedule_ops.upsert_schedule(
                flow,
                cron,
                input=input,
                name=name,
                timezone=timezone,
                max_catch_up=max_catch_up,
                enabled=enabled,
            )
        )

    async def unschedule(self, name: str) -> bool:
        """Remove a schedule (runs it started are kept); False when there was none."""
        return await self._run(_schedule_ops.delete_schedule(name))

    async def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        """Pause or resume a schedule; resuming does not catch up the paused time."""
        return await self._run(_schedule_ops.set_schedule_enabled(name, enabled))

    async def get_schedule(self, name: str) -> Schedule:
        return await self._run(_schedule_ops.get_schedule(name))

    async def list_schedules(self, *, flow: ops.FlowRef | None = None) -> list[Schedule]:
        """Every schedule (or those of one flow), by name, with its next occurrence."""
        flows = [ops.flow_slug(flow)] if flow is not None else None
        return await self._run(_schedule_ops.list_schedules(flows))
