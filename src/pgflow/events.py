"""Live events: one LISTEN connection per process, fanned out to whoever subscribed.

The SQL core notifies channel ``pgflow_events`` on every state change with a compact JSON
payload (``event_type``, ``run_id``, ``flow_slug``, ``step_slug``, ``status``). A hub keeps one
listening connection, reconnects with back-off when it drops, and tells subscribers when it
may have missed events (``RESYNC``), so that they re-read the state from the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

log = logging.getLogger("pgflow.events")

CHANNEL = "pgflow_events"
TERMINAL_RUN_EVENTS = frozenset({"run:completed", "run:failed", "run:cancelled"})


@dataclass(frozen=True)
class RunEvent:
    """One state change: ``run:started``, ``step:completed``…; ``step_slug`` is None for runs."""

    event_type: str
    run_id: uuid.UUID
    flow_slug: str | None
    step_slug: str | None
    status: str | None

    @property
    def is_terminal(self) -> bool:
        return self.event_type in TERMINAL_RUN_EVENTS


#: Put in a subscriber's queue when events may have been missed (the listener reconnected).
RESYNC = object()


def parse_event(payload: str) -> RunEvent | None:
    try:
        data: dict[str, Any] = json.loads(payload)
        return RunEvent(
            event_type=str(data["event_type"]),
            run_id=uuid.UUID(str(data["run_id"])),
            flow_slug=data.get("flow_slug"),
            step_slug=data.get("step_slug"),
            status=data.get("status"),
        )
    except (ValueError, KeyError, TypeError):
        return None


class _Subscriptions:
    """Subscribers by run id (None: every run); the queues are filled by the listener."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_run: dict[uuid.UUID | None, list[Any]] = {}

    def add(self, run_id: uuid.UUID | None, sink: Any) -> None:
        with self._lock:
            self._by_run.setdefault(run_id, []).append(sink)

    def remove(self, run_id: uuid.UUID | None, sink: Any) -> None:
        with self._lock:
            sinks = self._by_run.get(run_id, [])
            if sink in sinks:
                sinks.remove(sink)
            if not sinks:
                self._by_run.pop(run_id, None)

    def targets(self, event: RunEvent | None) -> list[Any]:
        with self._lock:
            if event is None:
                return [s for sinks in self._by_run.values() for s in sinks]
            return [*self._by_run.get(event.run_id, ()), *self._by_run.get(None, ())]

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._by_run)


class EventHub:
    """Sync hub: a daemon thread listens; subscribers get a :class:`queue.Queue`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._subs = _Subscriptions()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _ensure_started(self, timeout: float = 10) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="pgflow-events", daemon=True)
                self._thread.start()
        self._ready.wait(timeout)

    @contextlib.contextmanager
    def subscribe(self, run_id: uuid.UUID | None = None) -> Iterator[queue.Queue[Any]]:
        """A queue of :class:`RunEvent` (and :data:`RESYNC`) for one run, or all runs.
        Events sent after this returns are delivered (the LISTEN is in place)."""
        sink: queue.Queue[Any] = queue.Queue()
        self._subs.add(run_id, sink)
        try:
            self._ensure_started()
            yield sink
        finally:
            self._subs.remove(run_id, sink)

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = 0.2
        reconnecting = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    backoff = 0.2
                    if reconnecting:  # events may have been missed while disconnected
                        for sink in self._subs.targets(None):
                            sink.put(RESYNC)
                    reconnecting = True
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            event = parse_event(note.payload)
                            if event is not None:
                                for sink in self._subs.targets(event):
                                    sink.put(event)
            except psycopg.Error as exc:
                self._ready.clear()
                log.warning("event listener disconnected (%s); retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)


class AsyncEventHub:
    """Async hub: a task on the running loop listens; subscribers get an :class:`asyncio.Queue`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._subs = _Subscriptions()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _ensure_started(self, timeout: float = 10) -> None:
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pgflow-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    @contextlib.asynccontextmanager
    async def subscribe(self, run_id: uuid.UUID | None = None) -> Any:
        sink: asyncio.Queue[Any] = asyncio.Queue()
        self._subs.add(run_id, sink)
        try:
            await self._ensure_started()
            yield sink
        finally:
            self._subs.remove(run_id, sink)

    @property
    def listening(self) -> bool:
        return self._ready.is_set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.2
        reconnecting = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._ready.set()
                    backoff = 0.2
                    if reconnecting:  # events may have been missed while disconnected
                        for sink in self._subs.targets(None):
                            sink.put_nowait(RESYNC)
                    reconnecting = True
                    async for note in conn.notifies():
                        event = parse_event(note.payload)
                        if event is not None:
                            for sink in self._subs.targets(event):
                                sink.put_nowait(event)
            except psycopg.Error as exc:
                self._ready.clear()
                log.warning("event listener disconnected (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
