"""``Client``: the synchronous API. Every method runs an operation of
:mod:`pgflow.client._operations`; ``AsyncClient`` runs the very same ones."""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from pgflow import _flow_ops, _schedule_ops
from pgflow._ops import Operation, run
from pgflow._schedule_ops import Schedule
from pgflow.client import _operations as ops
from pgflow.client._models import HealthReport, PruneResult, Run, RunPage, RunWithStates
from pgflow.client._timing import check_when, deadline_after, remaining
from pgflow.dsl._definition import FlowDefinition, definition_of
from pgflow.dsl._schedule import DEFAULT_MAX_CATCH_UP
from pgflow.errors import WaitTimeoutError
from pgflow.events import RESYNC, EventHub, RunEvent

T = TypeVar("T")


def _pool_conninfo(pool: Any) -> str:
    conninfo = pool.conninfo
    return str(conninfo() if callable(conninfo) else conninfo)


class RunHandle:
    """A started run: wait for it, follow its events, or read its state."""

    def __init__(self, client: Client, run: Run) -> None:
        self.client = client
        self.run_id = run.run_id
        self.flow_slug = run.flow_slug
        self.started = run

    def wait(self, timeout: float | None = None) -> Run:
        return self.client.wait(self.run_id, timeout=timeout)

    def events(self, timeout: float | None = None) -> Iterator[RunEvent]:
        return self.client.events(self.run_id, timeout=timeout)

    def get(self) -> Run:
        return self.client.get_run(self.run_id)

    def __repr__(self) -> str:
        return f"<RunHandle {self.flow_slug} {self.run_id}>"


class Client:
    """Start and inspect runs. Give it a URL (it keeps a pool), a pool, or a connection.

    Methods accept ``conn=`` to run inside the caller's transaction: open one first (``with
    conn.transaction():``) and the start commits or rolls back with the application's writes.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        conn: psycopg.Connection[Any] | None = None,
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
            self._pool = ConnectionPool(
                database_url,
                min_size=1,
                max_size=max_pool_size,
                kwargs={"autocommit": True},
                open=True,
                name="pgflow-client",
            )
        self._conn = conn
        self._url = database_url or (_pool_conninfo(pool) if pool is not None else None)
        self.listen = listen and self._url is not None
        self.poll_interval = poll_interval
        self._hub: EventHub | None = None

    # -- plumbing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connection(
        self, conn: psycopg.Connection[Any] | None
    ) -> Iterator[psycopg.Connection[Any]]:
        if conn is not None:
            yield conn
        elif self._conn is not None:
            yield self._conn
        else:
            assert self._pool is not None
            with self._pool.connection() as pooled:
                yield pooled

    def _run(self, op: Operation[T], conn: psycopg.Connection[Any] | None = None) -> T:
        with self._connection(conn) as connection:
            return run(connection, op)

    def _events(self) -> EventHub:
        if self._hub is None:
            assert self._url is not None
            self._hub = EventHub(self._url)
        return self._hub

    def close(self) -> None:
        if self._hub is not None:
            self._hub.close()
        if self._own_pool and self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- starting -------------------------------------------------------------------------------
    def start_flow(
        self,
        flow: ops.FlowRef,
        input: Any,
        *,
        run_id: uuid.UUID | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> RunHandle:
        """Start a run; returns at once with a handle (``.wait()``, ``.events()``)."""
        return self._start(flow, [input], [run_id], None, conn)[0]

    def start_flows(
        self,
        flow: ops.FlowRef,
        inputs: Iterable[Any],
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> list[RunHandle]:
        """Start one run per input, in one round trip."""
        payloads = list(inputs)
        return self._start(flow, payloads, [None] * len(payloads), None, conn)

    def start_flow_sync(
        self,
        flow: ops.FlowRef,
        input: Any,
        *,
        run_id: uuid.UUID | None = None,
        timeout: float | None = None,
    ) -> Run:
        """Start a run and wait for it to finish (completed, failed or cancelled)."""
        return self.start_flow(flow, input, run_id=run_id).wait(timeout)

    def enqueue(
        self, job: ops.FlowRef, input: Any, *, conn: psycopg.Connection[Any] | None = None
    ) -> RunHandle:
        """Run a job (or any flow) as soon as a worker is free."""
        return self.start_flow(job, input, conn=conn)

    def enqueue_in(
        self,
        job: ops.FlowRef,
        input: Any,
        seconds: float | timedelta,
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> RunHandle:
        """Run a job after ``seconds``: no worker sees its task before then."""
        delay = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        return self._start(job, [input], [None], check_when(delay), conn)[0]

    def enqueue_at(
        self,
        job: ops.FlowRef,
        input: Any,
        when: datetime,
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> RunHandle:
        """Run a job at ``when`` (timezone-aware; a time in the past runs now)."""
        return self._start(job, [input], [None], check_when(when), conn)[0]

    def _start(
        self,
        flow: ops.FlowRef,
        inputs: Sequence[Any],
        run_ids: Sequence[uuid.UUID | None],
        visible_at: datetime | float | None,
        conn: psycopg.Connection[Any] | None,
    ) -> list[RunHandle]:
        payloads = [ops.prepare_input(flow, value) for value in inputs]
        runs = self._run(
            ops.start_flows(ops.flow_slug(flow), payloads, run_ids, visible_at=visible_at), conn
        )
        return [RunHandle(self, r) for r in runs]

    # -- waiting and following ------------------------------------------------------------------
    def wait(self, run_id: uuid.UUID, *, timeout: float | None = None) -> Run:
        """The run once it is completed, failed or cancelled. Woken by LISTEN/NOTIFY; polls
        only when notifications are unavailable. Raises :class:`WaitTimeoutError` after
        ``timeout``."""
        deadline = deadline_after(timeout)
        if not self.listen:
            while True:
                found = self.get_run(run_id)
                if found.is_terminal:
                    return found
                left = remaining(deadline)
                if left is not None and left <= 0:
                    raise WaitTimeoutError(f"run {run_id} is still {found.status} after {timeout}s")
                time.sleep(
                    min(self.poll_interval, left) if left is not None else self.poll_interval
                )
        with self._events().subscribe(run_id) as sink:
            while True:
                found = self.get_run(run_id)
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
                        item = sink.get(timeout=min(left, 5.0) if left is not None else 5.0)
                    except queue.Empty:
                        break
                    if item is RESYNC or item.is_terminal:
                        break

    def events(self, run_id: uuid.UUID, *, timeout: float | None = None) -> Iterator[RunEvent]:
        """Every event of one run, from its start until it completes or fails (or ``timeout``
        passes): those that happened before the call are rebuilt from the tables, then live
        ones follow as they happen."""
        if not self.listen:
            raise RuntimeError("events need LISTEN: this client was made with listen=False")
        deadline = deadline_after(timeout)
        seen: set[tuple[str, str | None]] = set()
        with self._events().subscribe(run_id) as sink:
            while True:
                # Catch up from the tables (at first, and whenever events may have been lost).
                for past in self._run(ops.past_events(run_id)):
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
                        item = sink.get(timeout=min(left, 5.0) if left is not None else 5.0)
                    except queue.Empty:
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
    def cancel_run(
        self,
        run_id: uuid.UUID,
        reason: str | None = None,
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> Run:
        """Cancel a started run: it ends 'cancelled' with ``reason``, its queued and running
        tasks are cancelled and their messages archived, and workers running them see
        ``ctx.cancelled``. Late reports of those tasks change nothing. Raises
        :class:`RunNotFoundError`, or :class:`RunStateError` for a run that has finished."""
        return self._run(ops.cancel_run(run_id, reason), conn)

    def retry_run(self, run_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None) -> Run:
        """Start a failed or cancelled run again from scratch: returns the new run (same flow
        and input, ``retry_of`` = ``run_id``); the original is kept as it is."""
        return self._run(ops.retry_run(run_id), conn)

    def resume_run(self, run_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None) -> Run:
        """Continue a failed or cancelled run (same run id): completed steps keep their
        outputs, every other step runs again; returns the run, started again."""
        return self._run(ops.resume_run(run_id), conn)

    # -- reading --------------------------------------------------------------------------------
    def get_run(self, run_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None) -> Run:
        return self._run(ops.get_run(run_id), conn)

    def get_run_with_states(
        self, run_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None
    ) -> RunWithStates:
        return self._run(ops.get_run_with_states(run_id), conn)

    def get_step_output(
        self, run_id: uuid.UUID, step_slug: str, *, conn: psycopg.Connection[Any] | None = None
    ) -> Any:
        return self._run(ops.get_step_output(run_id, step_slug), conn)

    def get_flow_input(
        self, run_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None
    ) -> Any:
        return self._run(ops.get_flow_input(run_id), conn)

    def list_runs(
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
        return self._run(
            ops.list_runs(
                flow=slug, status=status, since=since, until=until, limit=limit, cursor=cursor
            )
        )

    # -- maintenance ----------------------------------------------------------------------------
    def prune(
        self, older_than: timedelta, flows: Sequence[ops.FlowRef] | None = None
    ) -> PruneResult:
        slugs = [ops.flow_slug(f) for f in flows] if flows is not None else None
        return self._run(ops.prune(older_than, slugs))

    def recover_stalled_tasks(
        self, margin: float = 30.0, max_requeues: int = 3
    ) -> list[dict[str, Any]]:
        return self._run(ops.recover_stalled_tasks(margin, max_requeues))

    def health_check(self, *, connect_timeout: int = 5) -> HealthReport:
        """Reachability (a fresh connection, not a pooled one), schema version, pgmq, live
        workers and queue depths per flow; ``.healthy`` sums it up."""
        try:
            if self._url is None:
                return self._run(ops.health_check())
            with psycopg.connect(
                self._url, autocommit=True, connect_timeout=connect_timeout
            ) as conn:
                return run(conn, ops.health_check())
        except psycopg.OperationalError as exc:
            return HealthReport(database=False, problems=(f"database unreachable: {exc}",))

    # -- flow definitions -----------------------------------------------------------------------
    def ensure_flow(self, flow: ops.FlowRef, *, recreate: bool = False) -> _flow_ops.EnsureResult:
        assert not isinstance(flow, str), "ensure_flow needs the flow's definition, not a slug"
        return self._run(_flow_ops.ensure_flow(definition_of(flow), recreate=recreate))

    def upsert_flow(
        self,
        slug: str,
        steps: Iterable[Mapping[str, Any]],
        *,
        recreate: bool = False,
        **options: int,
    ) -> _flow_ops.EnsureResult:
        definition = FlowDefinition.from_data(slug, steps, options)
        return self._run(_flow_ops.ensure_flow(definition, recreate=recreate))

    def delete_flow(self, slug: str) -> bool:
        return self._run(_flow_ops.delete_flow(slug))

    def flow_exists(self, slug: str) -> bool:
        return self._run(_flow_ops.flow_exists(slug))

    def list_flows(self) -> list[_flow_ops.FlowSummary]:
        return self._run(_flow_ops.list_flows())

    # -- schedules ------------------------------------------------------------------------------
    def schedule(
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
        return self._run(
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

    def unschedule(self, name: str) -> bool:
        """Remove a schedule (runs it started are kept); False when there was none."""
        return self._run(_schedule_ops.delete_schedule(name))

    def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        """Pause or resume a schedule; resuming does not catch up the paused time."""
        return self._run(_schedule_ops.set_schedule_enabled(name, enabled))

    def get_schedule(self, name: str) -> Schedule:
        return self._run(_schedule_ops.get_schedule(name))

    def list_schedules(self, *, flow: ops.FlowRef | None = None) -> list[Schedule]:
        """Every schedule (or those of one flow), by name, with its next occurrence."""
        flows = [ops.flow_slug(flow)] if flow is not None else None
        return self._run(_schedule_ops.list_schedules(flows))
