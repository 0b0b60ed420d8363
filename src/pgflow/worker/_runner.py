"""The loop of one flow inside a worker: claim tasks, run handlers, report the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgflow import sql as core_sql
from pgflow.context import Context
from pgflow.dsl._flow import Flow
from pgflow.errors import first_line
from pgflow.worker._execute import (
    COMMITTED,
    SUPERSEDED,
    Outcome,
    execute,
    execute_in_transaction,
)
from pgflow.worker._warm import WarmConnection

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("pgflow.worker")

#: Back-off after a database error in the loop, doubling up to the maximum.
_BACKOFF_START, _BACKOFF_MAX = 0.2, 10.0

_T = TypeVar("_T")

#: Most completions sent in one complete_tasks_and_claim call (one transaction holding the
#: rows of that many runs locked).
MAX_COMPLETION_BATCH = 100
#: Parsed run inputs a runner keeps (see FlowRunner._run_input): the runs whose tasks it is
#: claiming now; a map's tasks come from one run for a long while.
RUN_INPUTS_KEPT = 32
#: The run input of a claimed task that the claim left out and the runner no longer holds.
_UNKNOWN_INPUT = object()


class Stats:
    """Counters for the periodic summary line."""

    def __init__(self) -> None:
        self.completed = 0
        self.failed = 0
        self.reconnects = 0

    def take(self) -> tuple[int, int]:
        taken = (self.completed, self.failed)
        self.completed = self.failed = 0
        return taken


@dataclass(frozen=True)
class _Completion:
    """A successful outcome waiting for the next batched report; ``landed`` is set once it is
    reported (or given up on), which frees the slot of ``task``, its task."""

    record: dict[str, Any]
    output: Any
    landed: asyncio.Future[None]
    task: asyncio.Task[Any] | None


class FlowRunner:
    """Polls one flow's queue and runs its tasks with at most ``max_concurrent`` at once."""

    def __init__(
        self,
        flow: Flow[Any],
        *,
        pool: AsyncConnectionPool[Any],
        warm: WarmConnection,
        worker_id: uuid.UUID,
        max_concurrent: int,
        batch_size: int,
        visibility_timeout: int,
        poll_interval: float,
        executor: Executor,
        shutdown: Any,
        stats: Stats,
        context_logger: logging.Logger,
        sync_connection: Callable[[], Any],
    ) -> None:
        self.flow = flow
        self.pool = pool
        #: Where the loop's calls (claims, reports, checks) get their connection.
        self.warm = warm
        self.worker_id = worker_id
        self.max_concurrent = max_concurrent
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        #: How long a claim's read hides the messages (see :meth:`load_timeouts`).
        self.claim_visibility = visibility_timeout
        self.poll_interval = poll_interval
        self.executor = executor
        self.shutdown = shutdown
        self.stats = stats
        self.task_logger = context_logger
        self.sync_connection = sync_connection
        self.wake = asyncio.Event()
        #: Set when a report's claim found the queue empty: the loop checks that a message is
        #: visible before it claims again (see _take_claimed, poke).
        self._check_first = False
        self.accepting = True
        self.in_flight: set[asyncio.Task[None]] = set()
        #: The tasks that take one of the max_concurrent slots: from dispatch until their
        #: outcome is reported. A batched one leaves it when its report lands, not a turn of
        #: the event loop later when its task ends: a report sent meanwhile would claim for
        #: fewer slots than there are.
        self._holding: set[asyncio.Task[Any]] = set()
        #: The contexts of the handlers running now, by task: how a cancellation reaches them.
        self._contexts: dict[tuple[uuid.UUID, str, int], Context] = {}
        self._slot_freed = asyncio.Event()
        self.timeouts: dict[str, float] = {}
        #: True on a core without claim_tasks (upstream pgflow): the plain 0.8.1 protocol.
        self.classic = False
        #: Report successful outcomes in batches (complete_tasks_and_claim), set by the worker
        #: when the option is on and the core has the function.
        self.batch_completions = False
        self._completions: list[_Completion] = []
        #: A report of completions is in flight (sent by a task or by the flusher): the one
        #: sender, so completions that come meanwhile wait and go together in the next.
        self._sending = False
        self._flusher: asyncio.Task[None] | None = None
        #: Tasks dispatched whose handler has not finished yet (a task cancelled before it
        #: ran leaves when it ends).
        self._running: set[asyncio.Task[Any]] = set()
        # Single-task steps this runner claimed itself: their step:started event brings no
        # news, so it does not trigger a poll (most of a chain's hops are claimed that way).
        self._single_steps = {s.slug for s in flow.steps if s.step_type == "single"}
        self._claimed_singles: dict[tuple[str, str], None] = {}
        self._claims_in_flight = 0
        self._held_notices: list[tuple[str, str]] = []
        #: Parsed inputs of the runs claimed last, least recently claimed first (_dispatch).
        self._run_inputs: dict[Any, Any] = {}
        self._known_runs_literal: str | None = None
        queue = sql.Identifier(f"q_{flow.slug.lower()}")
        self._next_visible = sql.SQL(core_sql.query("worker_next_visible")).format(table=queue)
        self._claim_query = sql.SQL(core_sql.query("worker_claim")).format(table=queue)

    # -- set-up ---------------------------------------------------------------------------------
    async def load_timeouts(self) -> None:
        """Effective timeouts as the database has them: they decide the message visibility."""
        async with self.warm.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(core_sql.query("worker_step_timeouts"), {"flow_slug": self.flow.slug})
            self.timeouts = {r["step_slug"]: float(r["timeout"]) for r in await cur.fetchall()}
        # A claimed task's message is hidden for its step's timeout + 2 s. When every step
        # has the same timeout, the claim's read hides it for that long at once, and the core
        # does not update the message a second time.
        if len(set(self.timeouts.values())) == 1:
            self.claim_visibility = int(next(iter(self.timeouts.values()))) + 2

    # -- the loop -------------------------------------------------------------------------------
    def notice_started(self, run_id: str, step_slug: str | None) -> None:
        """A step:started event of this flow: poll, unless it is a task claimed here."""
        if step_slug is None:
            self.poke()
        elif self._claims_in_flight:
            # The event is sent at the commit of the claim it may be about, and may come
            # before that claim's answer: judged when a claim in flight is back.
            self._held_notices.append((run_id, step_slug))
        else:
            self._judge_notice(run_id, step_slug)

    def _judge_notice(self, run_id: str, step_slug: str) -> None:
        if self._claimed_singles.pop((run_id, step_slug), 0) is not None:
            self.poke()

    async def _claiming(self, call: Awaitable[_T]) -> _T:
        """``call``, a claim (alone or with a report), with the step:started events that come
        meanwhile held until what it claimed is dispatched (see notice_started). Each claim
        that comes back judges all held events: one about a claim still in flight then wakes
        the loop, which costs a claim at most."""
        self._claims_in_flight += 1
        try:
            return await call
        finally:
            self._claims_in_flight -= 1
            held, self._held_notices = self._held_notices, []
            for run_id, step_slug in held:
                self._judge_notice(run_id, step_slug)

    def running_runs(self) -> set[uuid.UUID]:
        """The runs whose tasks have a handler running here."""
        return {run_id for run_id, _, _ in self._contexts}

    def notice_cancelled(self, run_id: uuid.UUID) -> None:
        """The run was cancelled: its handlers running here see ``ctx.cancelled``."""
        for (task_run_id, _, _), ctx in self._contexts.items():
            if task_run_id == run_id:
                ctx.cancellation.set()

    def stop_accepting(self) -> None:
        self.accepting = False
        self.poke()
        self._slot_freed.set()

    async def close(self) -> None:
        """Stop reporting: after the drain, only completions of tasks cancelled at the end of
        the grace period can be left (their messages reappear after the visibility timeout)."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def run(self) -> None:
        backoff = _BACKOFF_START
        while self.accepting:
            free = self.max_concurrent - len(self._holding)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            # Cleared before reading: a wake-up that arrives while we read is not lost.
            self.wake.clear()
            try:
                if self._check_first:
                    # The last claim found the queue empty: claim only if something became
                    # visible since (a delayed message, a retry), else sleep until it does.
                    self._check_first = False
                    until_visible = await self._idle_time()
                    if until_visible > 0:
                        await self._sleep(until_visible)
                        continue
                qty = min(self.batch_size, free)
                claimed, idle_for = await self._claiming(self._claim_and_dispatch(qty))
                # Fewer than asked for: the queue held no more just now. What is queued later
                # notifies; what becomes visible later (a delay, a retry) is waited for.
                if len(claimed) < qty and idle_for is None:  # the plain 0.8.1 protocol: ask
                    if claimed:
                        # The tasks just claimed start first: their report, on the critical
                        # path, takes the warm connection rather than this check.
                        await asyncio.sleep(0)
                    idle_for = await self._idle_time()
                backoff = _BACKOFF_START
            except psycopg.Error as exc:
                log.warning(
                    "flow %s: database error while polling (%s); retrying in %.1fs",
                    self.flow.slug,
                    first_line(exc),
                    backoff,
                )
                self.stats.reconnects += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            if idle_for:
                await self._sleep(idle_for)

    async def _sleep(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a wake-up."""
        if self.accepting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), seconds)

    def poke(self) -> None:
        """There may be new work (an event, a freed task, a reconnect): claim at once."""
        self._check_first = False
        self.wake.set()

    def _release(self, task: asyncio.Task[Any]) -> None:
        if task in self._holding:
            self._holding.discard(task)
            self._slot_freed.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self._running.discard(task)
        self._release(task)
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover - a bug
            log.error("flow %s: task crashed", self.flow.slug, exc_info=task.exception())

    def _claim_params(self, qty: int) -> dict[str, Any]:
        return {
            "flow_slug": self.flow.slug,
            "vt": self.claim_visibility,
            "qty": qty,
            "worker_id": self.worker_id,
            "known_runs": self._known_runs(),
        }

    def _known_runs(self) -> str:
        """The runs whose input this runner holds, as an array literal, built once per change of
        them: dumping a list of 32 UUIDs with every claim was a tenth of an idle worker's time."""
        if self._known_runs_literal is None:
            self._known_runs_literal = "{" + ",".join(map(str, self._run_inputs)) + "}"
        return self._known_runs_literal

    async def _claim_and_dispatch(self, qty: int) -> tuple[list[dict[str, Any]], float | None]:
        claimed, idle_for = await self._claim(qty)
        self._dispatch(claimed)
        return claimed, idle_for

    async def _claim(self, qty: int) -> tuple[list[dict[str, Any]], float | None]:
        """Up to ``qty`` tasks, and when they are fewer, how long to sleep until the queue's
        next message becomes visible (None: not known, the plain 0.8.1 protocol)."""
        idle_for = None
        async with self.warm.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if not self.classic:
                await cur.execute(self._claim_query, self._claim_params(qty))
                rows: list[dict[str, Any]] = await cur.fetchall()
                if rows and rows[-1]["run_id"] is None:  # fewer than asked for: see the query
                    idle_for = self._until_visible(rows.pop()["next_visible"])
                self.warm.quiet = len(rows) < qty
                return rows, idle_for
            # The two calls of the 0.8.1 protocol, then what the context needs.
            await cur.execute(
                core_sql.query("worker_read_messages"),
                {"queue": self.flow.slug, "vt": self.visibility_timeout, "qty": qty},
            )
            msg_ids = [r["msg_id"] for r in await cur.fetchall()]
            if not msg_ids:
                return [], None
            await cur.execute(
                core_sql.query("worker_start_tasks"),
                {"flow_slug": self.flow.slug, "msg_ids": msg_ids, "worker_id": self.worker_id},
            )
            records = await cur.fetchall()
            if not records:
                return [], None
            await cur.execute(
                core_sql.query("worker_task_details"),
                {"flow_slug": self.flow.slug, "msg_ids": [r["msg_id"] for r in records]},
            )
            details = {
                (d["run_id"], d["step_slug"], d["task_index"]): d for d in await cur.fetchall()
            }
        return [
            {**r, **details.get((r["run_id"], r["step_slug"], r["task_index"]), {})}
            for r in records
        ], None

    def _dispatch(self, records: list[dict[str, Any]]) -> None:
        # claim_tasks sends a run's input with one of its tasks only (the others have NULL),
        # as JSON text, parsed here once per run (see _run_input); not at all when the claim
        # said this worker holds it (known_runs). Those are taken first, before parsing new
        # ones can push them out; one pushed out by another claim meanwhile is read again.
        flow_inputs: dict[Any, Any] = {}
        for record in records:
            run_id = record["run_id"]
            if run_id not in flow_inputs and run_id in self._run_inputs:
                # Claimed again: kept the longest from now on.
                flow_inputs[run_id] = self._run_inputs[run_id] = self._run_inputs.pop(run_id)
        for record in records:
            text = record.get("flow_input")
            if text is not None and record["run_id"] not in flow_inputs:
                flow_inputs[record["run_id"]] = self._run_input(record["run_id"], text)
        for record in records:
            record["flow_input"] = flow_inputs.get(record["run_id"], _UNKNOWN_INPUT)
            if record["step_slug"] in self._single_steps:
                self._claimed_singles[(str(record["run_id"]), record["step_slug"])] = None
                while len(self._claimed_singles) > 1000:  # events may be switched off
                    self._claimed_singles.pop(next(iter(self._claimed_singles)))
            task = asyncio.create_task(self._run_task(record))
            self._running.add(task)
            self.in_flight.add(task)
            self._holding.add(task)
            task.add_done_callback(self._finished)

    def _run_input(self, run_id: Any, text: str) -> Any:
        """The input of a run this runner does not hold, parsed from ``text`` and kept, the
        least recently claimed pushed out: a claim would send it again with each batch of the
        run's tasks (a map's come ten at a time), and parsing it each time was a third of a
        worker's time draining a 10,000-item map. A run's input never changes."""
        value = json.loads(text)
        while len(self._run_inputs) >= RUN_INPUTS_KEPT:
            self._run_inputs.pop(next(iter(self._run_inputs)))
        self._run_inputs[run_id] = value
        self._known_runs_literal = None
        return value

    async def _read_run_input(self, run_id: Any) -> Any:
        """A run's input, read from the database: the claim left it out, as this worker held
        it, but it was no longer kept when the tasks arrived (rare)."""
        async with self.warm.connection() as conn:
            cur = await conn.execute(core_sql.query("worker_run_input"), {"run_id": run_id})
            row = await cur.fetchone()
        return None if row is None else row[0]

    async def _idle_time(self) -> float:
        """How long to sleep when there is nothing to do: until the next delayed message
        becomes visible, at most the poll interval."""
        async with self.warm.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(self._next_visible)
            row = await cur.fetchone()
        return self._until_visible(row["seconds"] if row else None)

    def _until_visible(self, seconds: float | None) -> float:
        """How long to sleep for a message visible in ``seconds`` (None: none is waiting)."""
        if seconds is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, float(seconds)))

    # -- one task -------------------------------------------------------------------------------
    async def _run_task(self, record: dict[str, Any]) -> None:
        try:
            outcome = await self._outcome(record)
        finally:
            self._running.discard(asyncio.current_task())
        if outcome is COMMITTED:
            self.stats.completed += 1
            self.poke()
            return
        if outcome is SUPERSEDED:  # another execution owns the task now and reports it
            return
        if self.batch_completions and not outcome.failed:
            await self._complete_in_batch(record, outcome.output)
            return
        await self._claiming(self._report(record, outcome))

    async def _outcome(self, record: dict[str, Any]) -> Outcome:
        """Run the task's handler: what to report."""
        step_slug = record["step_slug"]
        try:
            step = self.flow[step_slug]
            if record["flow_input"] is _UNKNOWN_INPUT:
                record["flow_input"] = await self._read_run_input(record["run_id"])
        except KeyError:
            outcome = Outcome(
                error=f"WorkerError: this worker's flow {self.flow.slug!r} has no handler for "
                f"step {step_slug!r} (the database definition differs from the code)"
            )
        except psycopg.Error as exc:  # the task fails and is retried, as any other failure
            outcome = Outcome(
                error=f"WorkerError: the run input could not be read: {first_line(exc)}"
            )
        else:
            task_input = record["input"]
            ctx = Context(
                run_id=record["run_id"],
                flow_slug=self.flow.slug,
                step_slug=step_slug,
                task_index=record["task_index"],
                attempt=int(record.get("attempt") or 1),
                flow_input=record.get("flow_input"),
                input=task_input,
                worker_id=self.worker_id,
                msg_id=record["msg_id"],
                logger=self.task_logger,
                shutdown=self.shutdown,
            )
            timeout = self.timeouts.get(step_slug) or float(
                step.options.get("timeout") or self.flow.options.get("timeout") or 60
            )
            log.debug(
                "task started: %s/%s[%s] run %s attempt %s",
                self.flow.slug,
                step_slug,
                ctx.task_index,
                ctx.run_id,
                ctx.attempt,
            )
            began = time.monotonic()
            running = (ctx.run_id, step_slug, ctx.task_index)
            self._contexts[running] = ctx
            try:
                if step.transactional:
                    outcome = await execute_in_transaction(
                        step,
                        task_input,
                        ctx,
                        timeout=timeout,
                        executor=self.executor,
                        async_connection=self.pool.connection,
                        sync_connection=self.sync_connection,
                        complete=(core_sql.query("worker_complete_task"), self._task_key(record)),
                    )
                else:
                    outcome = await execute(
                        step, task_input, ctx, timeout=timeout, executor=self.executor
                    )
            finally:
                self._contexts.pop(running, None)
            log.debug(
                "task %s: %s/%s[%s] run %s in %.1f ms%s",
                "failed" if outcome.failed else "completed",
                self.flow.slug,
                step_slug,
                ctx.task_index,
                ctx.run_id,
                (time.monotonic() - began) * 1000,
                f": {outcome.error}" if outcome.failed else "",
            )
        return outcome

    @staticmethod
    def _task_key(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "run_id": record["run_id"],
            "step_slug": record["step_slug"],
            "task_index": record["task_index"],
        }

    async def _report(self, record: dict[str, Any], outcome: Outcome) -> None:
        """complete_task or fail_task, retried through connection trouble until it lands."""
        params: dict[str, Any]
        if outcome.failed:
            query, params = core_sql.query("worker_fail_task"), {"error": outcome.error}
        else:
            query, params = (
                core_sql.query("worker_complete_task"),
                {"output": Jsonb(outcome.output)},
            )
        params |= self._task_key(record)
        backoff = _BACKOFF_START
        deadline = time.monotonic() + 300
        claimed: list[dict[str, Any]] = []
        qty = 0
        claim_next = True
        stage = "report"
        while True:
            try:
                async with self.warm.connection() as conn:
                    stage = "report"
                    if outcome.failed or not self.accepting or not claim_next or self.classic:
                        await conn.execute(query, params)
                    else:
                        # The completion most likely queued the next step: claim it in the same
                        # statement and commit, so a hop of a chain costs one round trip.
                        stage = "claim"
                        qty = self._claim_qty(finishing=1)
                        async with conn.cursor(row_factory=dict_row) as cur:
                            await cur.execute(
                                core_sql.query("worker_complete_and_claim"),
                                params | self._claim_params(qty),
                            )
                            claimed = await cur.fetchall()
                            self.warm.quiet = len(claimed) < qty
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    log.error(  # noqa: TRY400 - the connection error is the whole story
                        "giving up reporting %s/%s[%s] of run %s: %s (the task will be "
                        "recovered as stalled)",
                        self.flow.slug,
                        record["step_slug"],
                        record["task_index"],
                        record["run_id"],
                        exc,
                    )
                    return
                self.stats.reconnects += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            except psycopg.Error as exc:
                if stage == "claim":
                    # Never let claiming undo a completion: report it again on its own (which
                    # also tells a refused output from a failed claim).
                    log.debug("complete and claim failed (%s); reporting alone", exc)
                    claim_next = False
                    continue
                if outcome.failed:
                    log.error("fail_task refused %s: %s", record["step_slug"], exc)  # noqa: TRY400
                    return
                # The SQL core refused the output (for example one too large for jsonb):
                # fail the task with the reason rather than leave it running forever.
                outcome = Outcome(
                    error=f"WorkerError: complete_task refused the output: {first_line(exc)}"
                )
                query, params = (
                    core_sql.query("worker_fail_task"),
                    params | {"error": outcome.error},
                )
        if outcome.failed:
            self.stats.failed += 1
        else:
            self.stats.completed += 1
        self._take_claimed(claimed, qty)

    def _claim_qty(self, finishing: int) -> int:
        """How many tasks to claim along with reporting ``finishing`` tasks: the slots free once
        they are done, at most a poll's worth."""
        free = self.max_concurrent - len(self._holding) + finishing
        return max(1, min(self.batch_size, free))

    def _take_claimed(self, claimed: list[dict[str, Any]], qty: int) -> None:
        """Run what a report claimed along the way. When it claimed as many as it asked for
        (there may be more) or claimed nothing because it did not ask (a failure was reported,
        which may have queued a retry), the loop claims at once; when it found the queue empty,
        the loop only looks when the next message becomes visible (the completion may have
        queued a delayed one), without claiming from an empty queue again."""
        self._dispatch(claimed)
        if qty == 0 or len(claimed) == qty:
            self.poke()
        elif not claimed:
            self._check_first = True
            self.wake.set()

    # -- batched completions --------------------------------------------------------------------
    async def _complete_in_batch(self, record: dict[str, Any], output: Any) -> None:
        """Queue a successful outcome; return once it is reported ("natural batching"). With
        no report in flight and no other handler running, this task sends it at once itself:
        an idle worker adds no latency, not even the turn of the event loop a flusher task
        waits for to start. Outcomes that come while a report is in flight, or together, go in
        one report sent by a flusher task, so a busy worker commits once per batch."""
        landed = asyncio.get_running_loop().create_future()
        self._completions.append(_Completion(record, output, landed, asyncio.current_task()))
        if not self._sending:
            if self._running:
                # Other handlers may finish in a moment (a batch claimed together runs in one
                # turn of the event loop): the flusher sends what there is on the next turn.
                self._start_flusher()
            else:
                self._sending = True
                try:
                    await self._send_next_batch()
                finally:
                    self._sending = False
                    if self._completions:
                        self._start_flusher()
        await landed

    def _start_flusher(self) -> None:
        self._sending = True
        self._flusher = asyncio.create_task(
            self._flush_completions(), name=f"pgflow:{self.flow.slug}:completions"
        )
        self._flusher.add_done_callback(self._flusher_finished)

    async def _flush_completions(self) -> None:
        """Send what is waiting, batch after batch, until nothing is."""
        try:
            while self._completions:
                await self._send_next_batch()
        finally:
            # At once, not in a done callback: a completion queued before the callback ran
            # would wait for a flusher that has finished.
            self._sending = False

    async def _send_next_batch(self) -> None:
        batch = self._completions[:MAX_COMPLETION_BATCH]
        del self._completions[:MAX_COMPLETION_BATCH]
        try:
            await self._claiming(self._report_batch(batch))
        finally:
            for completion in batch:
                if not completion.landed.done():  # its task may have been cancelled
                    completion.landed.set_result(None)
                if completion.task is not None:
                    self._release(completion.task)

    def _flusher_finished(self, flusher: asyncio.Task[None]) -> None:
        if flusher.cancelled():  # possibly before it ran at all (close)
            self._sending = False
        elif flusher.exception() is not None:  # pragma: no cover
            log.error(
                "flow %s: completion flusher crashed", self.flow.slug, exc_info=flusher.exception()
            )

    async def _report_batch(self, batch: list[_Completion]) -> None:
        """complete_tasks_and_claim for the whole batch in one transaction, claiming for the
        slots it frees. If that fails, nothing of it was applied, or all of it was (a lost
        connection after the commit; completing again is then a no-op): each outcome is then
        reported on its own by :meth:`_report`, which retries through connection trouble and
        fails a task whose output the core refuses, so one bad task cannot block the others."""
        qty = self._claim_qty(finishing=len(batch)) if self.accepting else 0
        completions = [
            {**self._task_key(c.record), "run_id": str(c.record["run_id"]), "output": c.output}
            for c in batch
        ]
        try:
            async with self.warm.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    core_sql.query("worker_complete_tasks_and_claim"),
                    {"completions": Jsonb(completions)} | self._claim_params(qty),
                )
                claimed: list[dict[str, Any]] = await cur.fetchall()
                self.warm.quiet = len(claimed) < qty
        except psycopg.Error as exc:
            log.debug(
                "flow %s: batched completion of %d task(s) failed (%s); reporting one by one",
                self.flow.slug,
                len(batch),
                first_line(exc),
            )
            for completion in batch:
                await self._report(completion.record, Outcome(output=completion.output))
            return
        self.stats.completed += len(batch)
        self._take_claimed(claimed, qty)
