"""Listeners: your callbacks on run and step transitions, driven by ``LISTEN pgflow_events``.

Register callbacks with decorators or methods (``on_run_started``, ``on_step_started``,
``on_step_completed``, ``on_step_failed``, ``on_run_completed``, ``on_run_failed``, or
``on(event_type, fn)`` for any event type, ``"*"`` for all), then ``start()`` the listener or
use it as a context manager. :class:`Listener` runs each callback in a thread of its own
(coroutine functions on an event loop of that thread); :class:`AsyncListener` runs each one as
a task of the running loop (plain functions in a thread pool).

Callbacks receive a :class:`ListenerEvent`: the :class:`~pgflow.events.RunEvent` of the
notification plus a ``sequence`` number (the listener's delivery order, across callbacks) and
``caught_up`` (True when the transition was read back from the tables after a reconnect). It
carries no input, output or error: reading those costs a query per event, so a callback that
needs them asks for them (``Monitor.get_status(event.run_id)``).

Isolation: every callback has its own queue and worker, so a slow callback delays only its own
later events, and an exception is logged (logger ``pgflow.monitor``) and does not stop it. Each
callback sees events in the order the listener received them, hence a run's events in the
order they happened; different callbacks run concurrently (use ``sequence`` to merge them).

Delivery guarantee: **at most once** per transition and callback, never retried when the
callback raises. While the listener runs, a transition is delivered unless it was missed during
a disconnection *and* falls outside the catch-up: after the LISTEN connection comes back, the
listener reads the tables for transitions stamped since the last moment it knew it was
listening, minus ``catch_up_margin`` seconds (default 30: it covers the time to notice a
dropped connection and transactions that commit up to that long after they began), and delivers
the ones it had not delivered, deduplicated by ``(run_id, step_slug, event_type)``. Caught-up
transitions come before the live ones that follow the reconnect. The catch-up knows
``started``, ``completed`` and ``failed`` (the 0.8.1 timestamps); other transitions (such as
cancellations and resumptions) missed while disconnected, and those of runs deleted in the
meantime, are lost. Transitions before ``start()`` are never delivered. A ``run:resumed`` event
(``resume_run``) starts the run's deduplication afresh, since its steps start and end again: a
disconnection within ``catch_up_margin`` seconds after one may deliver the run's earlier
transitions a second time (the one exception to "at most once").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import queue
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar, overload

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgflow import sql as core_sql
from pgflow._db import connect, describe_connect_error, resolve_url
from pgflow._ops import Operation, arun, run
from pgflow.errors import DatabaseUnavailableError
from pgflow.events import RESYNC, AsyncEventHub, EventHub, RunEvent

log = logging.getLogger("pgflow.monitor")

#: Every event type the 0.8.1 core emits; ``on()`` also takes others (and ``"*"`` for all).
EVENT_TYPES = (
    "run:started",
    "step:started",
    "step:completed",
    "step:failed",
    "run:completed",
    "run:failed",
)
ALL_EVENTS = "*"
_EVENT_TYPE = re.compile(r"^(run|step):[a-z_]+$")
_RESUMED = "run:resumed"  # emitted by resume_run (an addition to 0.8.1)

Callback = Callable[["ListenerEvent"], Any]
C = TypeVar("C", bound=Callback)

_STOP = object()  # ends a worker (or the dispatcher) once its queue is drained
_IDLE_TICK = 1.0  # seconds without events after which the listener checks it still listens
_CATCH_UP_ATTEMPTS = 5


@dataclass(frozen=True)
class ListenerEvent(RunEvent):
    """A :class:`RunEvent` as a listener delivers it."""

    #: Position in the listener's delivery order (1, 2, …), the same for every callback.
    sequence: int = 0
    #: True when read back from the tables after a reconnect, not from a notification.
    caught_up: bool = False


@dataclass(frozen=True, eq=False)  # by identity: the same function may be registered twice
class _Subscription:
    event_type: str
    callback: Callback

    def matches(self, event: RunEvent) -> bool:
        return self.event_type in (ALL_EVENTS, event.event_type)

    @property
    def name(self) -> str:
        return getattr(self.callback, "__qualname__", repr(self.callback))


class _Callbacks:
    """Registration, shared by both listeners; ``_added`` starts a worker when running."""

    def __init__(self) -> None:
        self._subscriptions: tuple[_Subscription, ...] = ()

    @overload
    def on(self, event_type: str) -> Callable[[C], C]: ...

    @overload
    def on(self, event_type: str, callback: C) -> C: ...

    def on(self, event_type: str, callback: C | None = None) -> C | Callable[[C], C]:
        """Call ``callback`` for every event of ``event_type`` (``"*"``: every event). Returns
        the callback, so that ``@listener.on("step:failed")`` works as a decorator too."""
        if not isinstance(event_type, str) or not (
            event_type == ALL_EVENTS or _EVENT_TYPE.match(event_type)
        ):
            raise ValueError(
                f"event type must be '*' or look like 'run:started' or 'step:failed' "
                f"(known: {', '.join(EVENT_TYPES)}), got {event_type!r}"
            )

        def register(function: C) -> C:
            if not callable(function):
                raise TypeError(f"a listener callback must be callable, got {function!r}")
            subscription = _Subscription(event_type, function)
            self._subscriptions = (*self._subscriptions, subscription)
            self._added(subscription)
            return function

        return register if callback is None else register(callback)

    def on_run_started(self, callback: C) -> C:
        return self.on("run:started", callback)

    def on_step_started(self, callback: C) -> C:
        return self.on("step:started", callback)

    def on_step_completed(self, callback: C) -> C:
        return self.on("step:completed", callback)

    def on_step_failed(self, callback: C) -> C:
        return self.on("step:failed", callback)

    def on_run_completed(self, callback: C) -> C:
        return self.on("run:completed", callback)

    def on_run_failed(self, callback: C) -> C:
        return self.on("run:failed", callback)

    def _added(self, subscription: _Subscription) -> None:
        raise NotImplementedError


def _listener_conninfo(url: str, application_name: str) -> str:
    """The URL with ``application_name`` set (unless it sets one), so that operators can find
    the listening connection in ``pg_stat_activity``."""
    if "application_name" in conninfo_to_dict(url):
        return url
    return make_conninfo(url, application_name=application_name)


def _check_options(
    flows: Iterable[str] | str | None, catch_up_margin: float
) -> frozenset[str] | None:
    if isinstance(flows, str):
        raise TypeError(f"flows must be a list of flow slugs, not the string {flows!r}")
    if not catch_up_margin >= 0:
        raise ValueError(f"catch_up_margin must be a number of seconds >= 0, got {catch_up_margin}")
    return frozenset(flows) if flows is not None else None


class _Delivery:
    """What both listeners decide alike: the flow filter, duplicates, the delivery order, and
    where a catch-up starts. Used from one thread (or one event loop) only.

    Times are seconds since the epoch on the database server's clock, estimated locally from
    the offset measured at each round trip to it.
    """

    def __init__(self, flows: frozenset[str] | None, margin: float) -> None:
        self.flows = flows
        self.margin = margin
        self._sequence = 0
        self._offset = 0.0
        self._listening_until = 0.0
        self._delivered: set[tuple[uuid.UUID, str | None, str]] = set()
        self._delivered_order: deque[tuple[float, tuple[uuid.UUID, str | None, str]]] = deque()
        # Runs in progress: a run that finishes during a disconnection is one of them, so the
        # catch-up finds it by id instead of scanning finish times.
        self._running: set[uuid.UUID] = set()

    def _now(self) -> float:
        return time.time() + self._offset

    def _flows_param(self) -> list[str] | None:
        return sorted(self.flows) if self.flows is not None else None

    def seed(self) -> Operation[None]:
        """Where the listener starts: the server's clock and the runs in progress."""
        asked = time.time()
        rows = yield core_sql.query("listener_running_runs"), {"flows": self._flows_param()}
        answered = time.time()
        self._offset = rows[0]["now"].timestamp() - (asked + answered) / 2
        self._running = set(rows[0]["running"])
        self._listening_until = self._now()

    def still_listening(self) -> None:
        """The connection is up: nothing up to now needs a catch-up."""
        self._listening_until = max(self._listening_until, self._now())

    def accept(self, event: RunEvent, *, caught_up: bool = False) -> ListenerEvent | None:
        """The event to deliver, or None when filtered out or delivered before."""
        now = self._now()
        if not caught_up:
            self._listening_until = max(self._listening_until, now)
        if self.flows is not None and event.flow_slug not in self.flows:
            return None
        key = (event.run_id, event.step_slug, event.event_type)
        if event.event_type == _RESUMED:
            # The run starts over: its steps start and end again, and so may the run.
            self._delivered = {k for k in self._delivered if k[0] != event.run_id}
        elif key in self._delivered:
            return None
        else:
            self._delivered.add(key)
            self._delivered_order.append((now, key))
        # A key stamped before the earliest possible catch-up window cannot come back.
        horizon = self._listening_until - 2 * self.margin
        while self._delivered_order and self._delivered_order[0][0] < horizon:
            self._delivered.discard(self._delivered_order.popleft()[1])
        if event.event_type in ("run:started", _RESUMED):
            self._running.add(event.run_id)
        elif event.step_slug is None:
            self._running.discard(event.run_id)
        self._sequence += 1
        return ListenerEvent(**asdict(event), sequence=self._sequence, caught_up=caught_up)

    def catch_up(self) -> Operation[list[ListenerEvent]]:
        """The transitions missed while disconnected, in order, not delivered before."""
        since = datetime.fromtimestamp(self._listening_until - self.margin, UTC)
        rows = yield (
            core_sql.query("listener_catch_up"),
            {"since": since, "active": sorted(self._running), "flows": self._flows_param()},
        )
        missed = [
            self.accept(
                RunEvent(r["event_type"], r["run_id"], r["flow_slug"], r["step_slug"], r["status"]),
                caught_up=True,
            )
            for r in rows
        ]
        yield from self.seed()
        return [event for event in missed if event is not None]


def _log_failure(subscription: _Subscription, event: ListenerEvent) -> None:
    log.exception(
        "listener callback %s failed on %s of run %s",
        subscription.name,
        event.event_type,
        event.run_id,
    )


class _CallbackThread:
    """One callback's queue and the thread that drains it, in order."""

    def __init__(self, subscription: _Subscription) -> None:
        self.subscription = subscription
        self.events: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(
            target=self._work, name=f"pgflow-listener-{subscription.name}", daemon=True
        )
        self.thread.start()

    def _work(self) -> None:
        runner: asyncio.Runner | None = None  # for a coroutine callback: a loop of its own
        try:
            while (event := self.events.get()) is not _STOP:
                try:
                    result = self.subscription.callback(event)
                    if inspect.isawaitable(result):
                        runner = runner or asyncio.Runner()
                        runner.run(_awaited(result))
                except Exception:
                    _log_failure(self.subscription, event)
        finally:
            if runner is not None:
                runner.close()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class Listener(_Callbacks):
    """Calls your functions on run and step transitions, each in a thread of its own.

    ``database_url`` follows the usual rule when None (``PGFLOW_DATABASE_URL``,
    ``DATABASE_URL``, the embedded server). ``flows`` limits it to those flows.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        flows: Iterable[str] | None = None,
        catch_up_margin: float = 30.0,
        application_name: str = "pgflow-listener",
    ) -> None:
        super().__init__()
        self._url = database_url if database_url is not None else resolve_url()
        self._delivery = _Delivery(_check_options(flows, catch_up_margin), catch_up_margin)
        self._application_name = application_name
        self._lock = threading.Lock()
        self._workers: dict[_Subscription, _CallbackThread] = {}
        self._hub: EventHub | None = None
        self._dispatcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._inbox: queue.Queue[Any] | None = None  # the hub's queue, to wake the dispatcher

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._hub is not None and self._hub.listening

    def start(self) -> None:
        """Listen from now on: every transition committed after this returns is delivered."""
        with self._lock:
            if self._dispatcher is not None:
                raise RuntimeError("this listener is running already")
            with connect(self._url, autocommit=True) as conn:
                run(conn, self._delivery.seed())
            self._stopping.clear()
            self._hub = EventHub(_listener_conninfo(self._url, self._application_name))
            for subscription in self._subscriptions:
                self._workers[subscription] = _CallbackThread(subscription)
            subscribed = threading.Event()
            self._dispatcher = threading.Thread(
                target=self._dispatch,
                args=(self._hub, subscribed),
                name="pgflow-listener",
                daemon=True,
            )
            self._dispatcher.start()
        subscribed.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, then let the callbacks finish what they were given (up to
        ``timeout`` seconds; a callback still busy after that is left to finish alone)."""
        with self._lock:
            if self._dispatcher is None:
                return
            deadline = time.monotonic() + timeout
            self._stopping.set()
            if self._inbox is not None:
                self._inbox.put(_STOP)
            assert self._hub is not None
            self._hub.close()
            self._dispatcher.join(timeout)
            for worker in self._workers.values():
                worker.events.put(_STOP)
            for worker in self._workers.values():
                worker.thread.join(max(0.0, deadline - time.monotonic()))
            self._workers.clear()
            self._dispatcher = self._hub = self._inbox = None

    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _added(self, subscription: _Subscription) -> None:
        with self._lock:
            if self._dispatcher is not None:
                self._workers[subscription] = _CallbackThread(subscription)

    def _dispatch(self, hub: EventHub, subscribed: threading.Event) -> None:
        with hub.subscribe() as events:
            self._inbox = events
            subscribed.set()
            while not self._stopping.is_set():
                try:
                    item = events.get(timeout=_IDLE_TICK)
                except queue.Empty:
                    if hub.listening:
                        self._delivery.still_listening()
                    continue
                if item is _STOP:
                    break
                if item is RESYNC:
                    for missed in self._catch_up():
                        self._fan_out(missed)
                elif (event := self._delivery.accept(item)) is not None:
                    self._fan_out(event)

    def _catch_up(self) -> list[ListenerEvent]:
        for attempt in range(1, _CATCH_UP_ATTEMPTS + 1):
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=10) as conn:
                    return run(conn, self._delivery.catch_up())
            except psycopg.Error as exc:
                log.warning("listener catch-up failed (attempt %s): %s", attempt, exc)
                if self._stopping.wait(attempt * 0.5):
                    break
        log.error("listener gave up catching up: transitions during the disconnection are lost")
        return []

    def _fan_out(self, event: ListenerEvent) -> None:
        for subscription, worker in list(self._workers.items()):
            if subscription.matches(event):
                worker.events.put(event)


class AsyncListener(_Callbacks):
    """Calls your functions on run and step transitions: coroutine functions as tasks of the
    running loop, plain functions in a thread pool (one call per callback at a time, so up to
    ``max_threads`` slow plain callbacks do not wait for each other)."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        flows: Iterable[str] | None = None,
        catch_up_margin: float = 30.0,
        application_name: str = "pgflow-listener",
        max_threads: int = 32,
    ) -> None:
        super().__init__()
        if max_threads < 1:
            raise ValueError(f"max_threads must be >= 1, got {max_threads}")
        self._url = database_url if database_url is not None else resolve_url()
        self._delivery = _Delivery(_check_options(flows, catch_up_margin), catch_up_margin)
        self._application_name = application_name
        self._max_threads = max_threads
        self._workers: dict[_Subscription, tuple[asyncio.Queue[Any], asyncio.Task[None]]] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._hub: AsyncEventHub | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._hub is not None and self._hub.listening

    async def start(self) -> None:
        """Listen from now on: every transition committed after this returns is delivered."""
        if self._dispatcher is not None:
            raise RuntimeError("this listener is running already")
        try:
            async with await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=10
            ) as conn:
                await arun(conn, self._delivery.seed())
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(describe_connect_error(self._url, exc)) from None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self._max_threads, thread_name_prefix="pgflow-listener"
        )
        self._hub = AsyncEventHub(_listener_conninfo(self._url, self._application_name))
        for subscription in self._subscriptions:
            self._start_worker(subscription)
        subscribed = asyncio.Event()
        self._dispatcher = asyncio.create_task(self._dispatch(self._hub, subscribed))
        await subscribed.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, then let the callbacks finish what they were given (up to
        ``timeout`` seconds; after that they are cancelled)."""
        if self._dispatcher is None or self._hub is None:
            return
        self._dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._dispatcher
        await self._hub.close()
        for events, _task in self._workers.values():
            events.put_nowait(_STOP)
        tasks = [task for _events, task in self._workers.values()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._workers.clear()
        self._dispatcher = self._hub = self._executor = None

    async def __aenter__(self) -> AsyncListener:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _added(self, subscription: _Subscription) -> None:
        if self._dispatcher is not None:
            self._start_worker(subscription)

    def _start_worker(self, subscription: _Subscription) -> None:
        events: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(
            self._work(subscription, events), name=f"pgflow-listener-{subscription.name}"
        )
        self._workers[subscription] = (events, task)

    async def _work(self, subscription: _Subscription, events: asyncio.Queue[Any]) -> None:
        loop = asyncio.get_running_loop()
        is_coroutine = inspect.iscoroutinefunction(subscription.callback)
        while (event := await events.get()) is not _STOP:
            try:
                if is_coroutine:
                    await subscription.callback(event)
                else:
                    result = await loop.run_in_executor(
                        self._executor, subscription.callback, event
                    )
                    if inspect.isawaitable(result):
                        await result
            except Exception:
                _log_failure(subscription, event)

    async def _dispatch(self, hub: AsyncEventHub, subscribed: asyncio.Event) -> None:
        async with hub.subscribe() as events:
            subscribed.set()
            while True:
                try:
                    item = await asyncio.wait_for(events.get(), _IDLE_TICK)
                except TimeoutError:
                    if hub.listening:
                        self._delivery.still_listening()
                    continue
                if item is RESYNC:
                    for missed in await self._catch_up():
                        self._fan_out(missed)
                elif (event := self._delivery.accept(item)) is not None:
                    self._fan_out(event)

    async def _catch_up(self) -> list[ListenerEvent]:
        for attempt in range(1, _CATCH_UP_ATTEMPTS + 1):
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=10
                ) as conn:
                    return await arun(conn, self._delivery.catch_up())
            except psycopg.Error as exc:
                log.warning("listener catch-up failed (attempt %s): %s", attempt, exc)
                await asyncio.sleep(attempt * 0.5)
        log.error("listener gave up catching up: transitions during the disconnection are lost")
        return []

    def _fan_out(self, event: ListenerEvent) -> None:
        for subscription, (events, _task) in self._workers.items():
            if subscription.matches(event):
                events.put_nowait(event)
