"""The worker process: several flows, one pool, live wake-ups, heartbeat, graceful stop.

Embedding in an application::

    async with Worker([flow], database_url=url):
        ...  # the worker runs in the background until the block exits

As a process: ``Worker([flow]).run()`` (what ``pgflow worker`` calls) handles SIGTERM/SIGINT:
the first signal stops polling and drains in-flight tasks for up to ``shutdown_grace``
seconds; a second one exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgflow import sql as core_sql
from pgflow._db import resolve_url
from pgflow.config import choose_database
from pgflow.dsl._definition import definition_of
from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job
from pgflow.errors import ConfigurationError, InstallError, first_line
from pgflow.flows import aensure_flow
from pgflow.worker._runner import FlowRunner, Stats
from pgflow.worker._scheduler import start_scheduler
from pgflow.worker._warm import WarmConnection

log = logging.getLogger("pgflow.worker")

#: The channel workers listen on: the SQL core notifies there the events a worker acts on,
#: step:started and run:cancelled (see functions/_emit_events.sql). Every event goes to
#: ``pgflow_events`` (:data:`pgflow.events.CHANNEL`), which would send a busy worker thousands of
#: notifications a second of no use to it, each costing CPU on both ends.
EVENTS_CHANNEL = "pgflow_worker_events"

#: How often the runs of running handlers are checked for cancellation: without LISTEN that is
#: the only way to learn of it; with LISTEN, run:cancelled events carry it at once and the check
#: is a safety net for events missed (around a reconnect, or just before a claim returned).
CANCEL_CHECK_INTERVAL = 0.5
CANCEL_CHECK_INTERVAL_LISTENING = 5.0


#: How long one phase of stopping (after the drain) may take before the worker goes on without
#: it: a stop must always end, whatever a connection or a task is stuck on.
STOP_PHASE_TIMEOUT = 15.0


async def _within(what: str, awaitable: Awaitable[Any]) -> None:
    """Await one phase of stopping, at most STOP_PHASE_TIMEOUT seconds (then cancelled), and
    say what was stuck, with the tasks still pending, so that a hang can be diagnosed."""
    try:
        await asyncio.wait_for(awaitable, STOP_PHASE_TIMEOUT)
    except TimeoutError:
        pending = sorted(t.get_name() for t in asyncio.all_tasks() if not t.done())
        log.warning(
            "stopping: %s did not finish within %.0fs; going on (pending tasks: %s)",
            what,
            STOP_PHASE_TIMEOUT,
            ", ".join(pending),
        )


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker behaves. Every field has a default that suits most deployments."""

    max_concurrent: int = 10
    batch_size: int = 10
    visibility_timeout: int = 2
    poll_interval: float = 1.0
    listen: bool = True
    #: Behind a transaction-mode pooler (PgBouncer, Supavisor): no LISTEN (polling only) and
    #: no server-side prepared statements, which such poolers cannot route.
    pooler: bool = False
    heartbeat_interval: float = 5.0
    shutdown_grace: float = 30.0
    summary_interval: float = 60.0
    recovery_interval: float = 15.0
    stalled_margin: float = 30.0
    max_requeues: int = 3
    function_name: str | None = None
    ensure_flows: bool = True
    recreate_flows: bool = False
    #: Fire the cron schedules of the served flows (see :mod:`pgflow.worker._scheduler`);
    #: ``scheduler_interval`` is the longest sleep between passes (finding new schedules).
    scheduler: bool = True
    scheduler_interval: float = 5.0
    #: Report the results of tasks that finish while a report is in flight together, in one
    #: transaction (complete_tasks_and_claim): a busy worker commits once per batch instead of
    #: once per task. Failures and transactional steps are reported one by one regardless.
    batch_completions: bool = True

    def validated(self) -> WorkerOptions:
        checks = [
            ("max_concurrent", self.max_concurrent >= 1),
            ("batch_size", self.batch_size >= 1),
            ("visibility_timeout", self.visibility_timeout >= 1),
            ("poll_interval", self.poll_interval > 0),
            ("heartbeat_interval", self.heartbeat_interval > 0),
            ("shutdown_grace", self.shutdown_grace >= 0),
            ("recovery_interval", self.recovery_interval > 0),
            ("stalled_margin", self.stalled_margin >= 0),
            ("max_requeues", self.max_requeues >= 0),
            ("scheduler_interval", self.scheduler_interval > 0),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigurationError(
                    f"worker option {name} is out of range: {getattr(self, name)!r}"
                )
        return self


def _default_function_name() -> str:
    return f"pgflow-py@{socket.gethostname()}"


class Worker:
    """Runs the handlers of one or more flows (or jobs)."""

    def __init__(
        self,
        flows: Iterable[Flow[Any] | Job[Any, Any]],
        *,
        database_url: str | None = None,
        options: WorkerOptions | None = None,
        **overrides: Any,
    ) -> None:
        self.flows: list[Flow[Any]] = []
        for item in flows:
            flow = item.flow if isinstance(item, Job) else item
            if not isinstance(flow, Flow):
                raise TypeError(f"Worker takes flows and jobs, got {item!r}")
            if any(f.slug == flow.slug for f in self.flows):
                raise ConfigurationError(f"flow {flow.slug!r} is given to the worker twice")
            self.flows.append(flow)
        if not self.flows:
            raise ConfigurationError("a worker needs at least one flow")
        base = options or WorkerOptions()
        self.options = (
            WorkerOptions(**{**base.__dict__, **overrides}) if overrides else base
        ).validated()
        self.database_url = database_url
        self.function_name = self.options.function_name or _default_function_name()
        self.shutdown = threading.Event()
        self.stats = Stats()
        self.runners: dict[str, FlowRunner] = {}
        self.exit_reason: str | None = None
        self._pool: AsyncConnectionPool[Any] | None = None
        self._warm: WarmConnection | None = None
        self._sync_pool: ConnectionPool[Any] | None = None
        self._sync_pool_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._background: list[asyncio.Task[Any]] = []
        self._runner_tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        self._started = False
        self.listening = False

    @property
    def _wants_listen(self) -> bool:
        # A transaction-mode pooler accepts LISTEN but hands the server connection to other
        # clients between transactions, so notifications would be lost: poll instead.
        return self.options.listen and not self.options.pooler

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, make sure the flows exist, register, and start polling."""
        if self._started:
            raise RuntimeError("this worker was started already")
        self._started = True
        url = self.database_url or resolve_url(choose_database(None))
        self.database_url = url
        total = sum(self.options.max_concurrent for _ in self.flows)
        self._pool = AsyncConnectionPool(
            url,
            min_size=min(2, total + 1),
            # + 1: the connection kept warm for the runners' next call (WarmConnection).
            max_size=max(4, min(total + 2, 32)) + 1,
            kwargs=self._connection_kwargs(),
            open=False,
            name="pgflow-worker",
        )
        await self._pool.open(wait=True, timeout=30)
        self._warm = WarmConnection(self._pool)
        await self._require_schema(self._pool)
        self._executor = ThreadPoolExecutor(max_workers=total, thread_name_prefix="pgflow-handler")
        task_logger = logging.getLogger("pgflow.task")
        async with self._pool.connection() as conn:
            for flow in self.flows:
                if self.options.ensure_flows:
                    result = await aensure_flow(
                        conn, definition_of(flow), recreate=self.options.recreate_flows
                    )
                    log.info("flow %s: %s", flow.slug, result.status)
            for flow in self.flows:
                runner = FlowRunner(
                    flow,
                    pool=self._pool,
                    warm=self._warm,
                    worker_id=uuid.uuid4(),
                    max_concurrent=self.options.max_concurrent,
                    batch_size=self.options.batch_size,
                    visibility_timeout=self.options.visibility_timeout,
                    poll_interval=self.options.poll_interval,
                    executor=self._executor,
                    shutdown=self.shutdown,
                    stats=self.stats,
                    context_logger=task_logger,
                    sync_connection=self._sync_connection,
                )
                await conn.execute(
                    core_sql.query("worker_register"),
                    {
                        "worker_id": runner.worker_id,
                        "queue": flow.slug,
                        "function_name": self.function_name,
                    },
                )
                await runner.load_timeouts()
                self.runners[flow.slug] = runner
        if not await self._core_has("pgflow.claim_tasks(text, integer, integer, uuid)"):
            log.info("the SQL core has no claim_tasks: using the plain 0.8.1 worker protocol")
            for runner in self.runners.values():
                runner.classic = True
        elif self.options.batch_completions:
            if await self._core_has(
                "pgflow.complete_tasks_and_claim(jsonb, integer, integer, uuid, text)"
            ):
                for runner in self.runners.values():
                    runner.batch_completions = True
            else:
                log.info("the SQL core has no complete_tasks_and_claim: completions one by one")
        for runner in self.runners.values():
            self._runner_tasks.append(
                asyncio.create_task(runner.run(), name=f"pgflow:{runner.flow.slug}")
            )
        if self._wants_listen:
            self._background.append(asyncio.create_task(self._listen(url), name="pgflow:listen"))
        self._background.append(asyncio.create_task(self._heartbeat(), name="pgflow:heartbeat"))
        self._background.append(asyncio.create_task(self._summary(), name="pgflow:summary"))
        self._background.append(
            asyncio.create_task(self._watch_cancellations(), name="pgflow:cancellations")
        )
        if await self._core_has("pgflow.recover_stalled_tasks(interval, integer)"):
            self._background.append(asyncio.create_task(self._recover(), name="pgflow:recover"))
        else:
            log.warning(
                "this database's pgflow core has no recover_stalled_tasks (an upstream core?): "
                "tasks of workers that die stay 'started' until recovered by other means"
            )
        if self.options.scheduler and (
            scheduler := await start_scheduler(
                self._pool,
                self.flows,
                interval=self.options.scheduler_interval,
                register=self.options.ensure_flows,
            )
        ):
            self._background.append(scheduler)
        log.info(
            "worker %s started: flows %s, max_concurrent %s, batch %s, %s",
            self.function_name,
            ", ".join(self.runners),
            self.options.max_concurrent,
            self.options.batch_size,
            "LISTEN wake-ups"
            if self._wants_listen
            else f"polling every {self.options.poll_interval}s",
        )

    async def wait(self) -> None:
        """Until the worker stops (deprecated by an operator, or :meth:`stop`)."""
        await self._stopped.wait()

    async def stop(self, grace: float | None = None) -> None:
        """Stop polling, let in-flight tasks finish for up to ``grace`` seconds, then cancel
        what is left (their messages reappear after the visibility timeout)."""
        if self._stopped.is_set():
            return
        grace = self.options.shutdown_grace if grace is None else grace
        self.shutdown.set()
        for runner in self.runners.values():
            runner.stop_accepting()
        if self._runner_tasks:
            await _within(
                "the polling loops", asyncio.gather(*self._runner_tasks, return_exceptions=True)
            )
        in_flight = [t for r in self.runners.values() for t in r.in_flight]
        if in_flight:
            log.info("draining %d in-flight task(s) for up to %.0fs", len(in_flight), grace)
            _, pending = await asyncio.wait(in_flight, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "%d task(s) did not finish within the grace period; they will be retried "
                    "after their visibility timeout",
                    len(pending),
                )
                await _within(
                    "the cancelled tasks", asyncio.gather(*pending, return_exceptions=True)
                )
        for runner in self.runners.values():
            await _within(f"reporting of flow {runner.flow.slug}", runner.close())
        for task in self._background:
            task.cancel()
        await _within(
            "the background tasks", asyncio.gather(*self._background, return_exceptions=True)
        )
        if self._warm is not None:
            await _within("returning the warm connection", self._warm.close())
        if self._pool is not None:
            await _within("closing the connection pool", self._pool.close())
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._sync_pool is not None:
            await _within("closing the sync pool", asyncio.to_thread(self._sync_pool.close))
        self._stopped.set()
        log.info("worker %s stopped", self.function_name)

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @staticmethod
    async def _require_schema(pool: AsyncConnectionPool[Any]) -> None:
        """Refuse to start, in one line, on a database without the schema (rather than log a
        polling error forever); the pool is closed first, so nothing is left running."""
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT to_regclass('pgflow.flows') IS NOT NULL")
            row = await cur.fetchone()
        if not (row and row[0]):
            await pool.close()
            raise InstallError(
                "the pgflow schema is not installed in this database: run `pgflow install`"
            )

    def _connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.options.pooler:
            kwargs["prepare_threshold"] = None
        return kwargs

    def _sync_connection(self) -> Any:
        """A sync pooled connection for transactional sync handlers (the pool is made on the
        first use, from the handler threads)."""
        with self._sync_pool_lock:
            if self._sync_pool is None:
                assert self.database_url is not None
                self._sync_pool = ConnectionPool(
                    self.database_url,
                    min_size=1,
                    max_size=max(2, self.options.max_concurrent),
                    kwargs=self._connection_kwargs(),
                    name="pgflow-worker-sync",
                    open=True,
                )
            return self._sync_pool.connection()

    # -- background duties ----------------------------------------------------------------------
    async def _listen(self, url: str) -> None:
        """One LISTEN connection: every step:started of a served flow wakes its runner, every
        run:cancelled reaches the handlers of the run.

        Reconnects with back-off; after a reconnect every runner is woken, since events may
        have been missed. Where LISTEN is not possible (a transaction-mode pooler), polling
        alone carries on."""
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening = True
                    backoff = 0.5
                    for runner in self.runners.values():
                        runner.poke()
                    async for note in conn.notifies():
                        self._dispatch(note.payload)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                self.listening = False
                first = first_line(exc)
                log.warning(
                    "event listener lost its connection (%s); reconnecting in %.1fs", first, backoff
                )
                self.stats.reconnects += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _dispatch(self, payload: str) -> None:
        try:
            event: Mapping[str, Any] = json.loads(payload)
        except ValueError:
            return
        runner = self.runners.get(str(event.get("flow_slug")))
        if runner is None:
            return
        if event.get("event_type") == "step:started":
            runner.notice_started(str(event.get("run_id")), event.get("step_slug"))
        elif event.get("event_type") == "run:cancelled":
            with contextlib.suppress(ValueError):
                runner.notice_cancelled(uuid.UUID(str(event.get("run_id"))))

    async def _heartbeat(self) -> None:
        ids = {runner.worker_id: slug for slug, runner in self.runners.items()}
        while True:
            await asyncio.sleep(self.options.heartbeat_interval)
            try:
                assert self._pool is not None
                async with (
                    self._pool.connection() as conn,
                    conn.cursor(row_factory=dict_row) as cur,
                ):
                    await cur.execute(core_sql.query("worker_heartbeat"), {"worker_ids": list(ids)})
                    rows = await cur.fetchall()
            except psycopg.Error as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            for row in rows:
                runner = self.runners[ids[row["worker_id"]]]
                if row["deprecated"] and runner.accepting:
                    log.info(
                        "flow %s: this worker was deprecated; finishing in-flight tasks",
                        runner.flow.slug,
                    )
                    runner.stop_accepting()
            if all(not r.accepting for r in self.runners.values()):
                self.exit_reason = "deprecated"
                # Not awaited here: stop() cancels this very task.
                self._stopping = asyncio.get_running_loop().create_task(self.stop())
                return

    async def _core_has(self, signature: str) -> bool:
        assert self._pool is not None
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (signature,))
            row = await cur.fetchone()
        return bool(row and row[0])

    async def recover_stalled_tasks(self) -> list[dict[str, Any]]:
        """Requeue (or fail) tasks whose worker died; returns what was recovered. Any number of
        workers may call this: one at a time does the work, across the fleet."""
        assert self._pool is not None
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                core_sql.query("worker_recover_stalled"),
                {"margin": self.options.stalled_margin, "max_requeues": self.options.max_requeues},
            )
            recovered = [dict(r) for r in await cur.fetchall()]
        for row in recovered:
            log.warning(
                "stalled task %s: %s[%s] of run %s (its worker stopped reporting)",
                row["action"],
                row["step_slug"],
                row["task_index"],
                row["run_id"],
            )
        if recovered:
            for runner in self.runners.values():
                runner.poke()
        return recovered

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(self.options.recovery_interval)
            try:
                await self.recover_stalled_tasks()
            except psycopg.Error as exc:
                log.warning("stalled-task recovery failed: %s", exc)

    async def _watch_cancellations(self) -> None:
        """Tell running handlers (``ctx.cancelled``) that their run was cancelled, by asking
        the database about their runs (see :data:`CANCEL_CHECK_INTERVAL`)."""
        query = core_sql.query("worker_cancelled_runs")
        last_check = time.monotonic()
        while True:
            await asyncio.sleep(CANCEL_CHECK_INTERVAL)
            if self.listening and time.monotonic() - last_check < CANCEL_CHECK_INTERVAL_LISTENING:
                continue
            runners = {
                run_id: runner
                for runner in self.runners.values()
                for run_id in runner.running_runs()
            }
            last_check = time.monotonic()
            if not runners:
                continue
            try:
                assert self._pool is not None
                async with (
                    self._pool.connection() as conn,
                    conn.cursor(row_factory=dict_row) as cur,
                ):
                    await cur.execute(query, {"run_ids": list(runners)})
                    cancelled = [row["run_id"] for row in await cur.fetchall()]
            except psycopg.Error as exc:
                log.warning("checking for cancelled runs failed: %s", first_line(exc))
                continue
            for run_id in cancelled:
                runners[run_id].notice_cancelled(run_id)

    async def _summary(self) -> None:
        while True:
            await asyncio.sleep(self.options.summary_interval)
            completed, failed = self.stats.take()
            in_flight = sum(len(r.in_flight) for r in self.runners.values())
            log.info(
                "last %.0fs: %d task(s) completed, %d failed; %d in flight",
                self.options.summary_interval,
                completed,
                failed,
                in_flight,
            )

    # -- as a process ---------------------------------------------------------------------------
    def run(self) -> int:
        """Run until a signal or deprecation stops the worker; returns the exit code (0)."""
        return asyncio.run(self._main())

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        signals = 0
        stopping: list[asyncio.Task[None]] = []

        def on_signal(signum: int) -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                log.info(
                    "received %s: stopping (again to exit at once)", signal.Signals(signum).name
                )
                self.exit_reason = "signal"
                stopping.append(loop.create_task(self.stop()))
            else:
                log.warning("second signal: exiting without waiting")
                os._exit(1)

        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal, signum)
        await self.start()
        started = time.monotonic()
        await self.wait()
        log.debug("worker ran for %.1fs", time.monotonic() - started)
        return 0
