"""Listeners: callbacks on real runs driven by a real worker, across a killed connection."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgflow import Client, Flow
from pgflow.monitor import EVENT_TYPES, AsyncListener, Listener, ListenerEvent
from pgflow.testing import TestDatabaseServer, running_worker
from pgflow.worker import Worker

FAST = {"poll_interval": 0.1, "summary_interval": 3600}


def two_step_flow() -> Flow[Any]:
    flow = Flow("listened", timeout=5)

    @flow.step
    def first(run: Any) -> int:
        return int(run["n"])

    @flow.step(first)
    async def second(run: Any, n: int) -> int:
        return n + 1

    return flow


def failing_flow() -> Flow[Any]:
    flow = Flow("doomed", timeout=5, max_attempts=1)

    @flow.step
    def boom(run: Any) -> None:
        raise RuntimeError("boom")

    return flow


def expected_success(run_id: uuid.UUID) -> list[tuple[str, uuid.UUID, str | None]]:
    return [
        ("run:started", run_id, None),
        ("step:started", run_id, "first"),
        ("step:completed", run_id, "first"),
        ("step:started", run_id, "second"),
        ("step:completed", run_id, "second"),
        ("run:completed", run_id, None),
    ]


class Recorder:
    """Collects what callbacks receive; ``by_callback`` keeps each callback's own order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[ListenerEvent] = []
        self.by_callback: dict[str, list[ListenerEvent]] = {}

    def callback(self, name: str) -> Callable[[ListenerEvent], None]:
        def record(event: ListenerEvent) -> None:
            with self.lock:
                self.events.append(event)
                self.by_callback.setdefault(name, []).append(event)

        record.__qualname__ = name
        return record

    def register_all_six(self, listener: Listener | AsyncListener) -> None:
        listener.on_run_started(self.callback("run:started"))
        listener.on_step_started(self.callback("step:started"))
        listener.on_step_completed(self.callback("step:completed"))
        listener.on_step_failed(self.callback("step:failed"))
        listener.on_run_completed(self.callback("run:completed"))
        listener.on_run_failed(self.callback("run:failed"))

    def of_run(self, run_id: uuid.UUID) -> list[ListenerEvent]:
        with self.lock:
            return sorted((e for e in self.events if e.run_id == run_id), key=lambda e: e.sequence)

    def wait_for(self, run_id: uuid.UUID, event_type: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.event_type == event_type for e in self.of_run(run_id)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event_type} for {run_id}: {self.of_run(run_id)}")
            time.sleep(0.02)


def summary(events: list[ListenerEvent]) -> list[tuple[str, uuid.UUID, str | None]]:
    return [(e.event_type, e.run_id, e.step_slug) for e in events]


def test_all_six_callbacks_fire_in_order_for_a_real_run(pgflow_database_url: str) -> None:
    recorder = Recorder()
    everything: list[ListenerEvent] = []
    flows = [two_step_flow(), failing_flow()]
    with (
        running_worker(flows, pgflow_database_url, **FAST),
        Listener(pgflow_database_url) as listener,
        Client(pgflow_database_url) as client,
    ):
        recorder.register_all_six(listener)
        listener.on("*", everything.append)
        ok = client.start_flow("listened", {"n": 1}).run_id
        failed = client.start_flow("doomed", {}).run_id
        recorder.wait_for(ok, "run:completed")
        recorder.wait_for(failed, "run:failed")
    assert summary(recorder.of_run(ok)) == expected_success(ok)
    assert summary(recorder.of_run(failed)) == [
        ("run:started", failed, None),
        ("step:started", failed, "boom"),
        ("step:failed", failed, "boom"),
        ("run:failed", failed, None),
    ]
    # Each callback got only its own event type, and a callback sees events in delivery order.
    for name, received in recorder.by_callback.items():
        assert {e.event_type for e in received} == {name}
        assert [e.sequence for e in received] == sorted(e.sequence for e in received)
    assert set(recorder.by_callback) == set(EVENT_TYPES)
    assert [e for e in everything if e.run_id == ok] == recorder.of_run(ok)
    assert [e.sequence for e in everything] == list(range(1, len(everything) + 1))
    assert not any(e.caught_up for e in everything)
    assert (everything[0].flow_slug, everything[0].status) == ("listened", "started")


def test_flow_filter_and_events_before_start(pgflow_database_url: str) -> None:
    recorder = Recorder()
    with (
        running_worker([two_step_flow(), failing_flow()], pgflow_database_url, **FAST),
        Client(pgflow_database_url) as client,
    ):
        before = client.start_flow_sync("listened", {"n": 1}, timeout=30).run_id
        with Listener(pgflow_database_url, flows=["doomed"]) as listener:
            listener.on("*", recorder.callback("all"))
            ignored = client.start_flow_sync("listened", {"n": 2}, timeout=30).run_id
            failed = client.start_flow("doomed", {}).run_id
            recorder.wait_for(failed, "run:failed")
    assert {e.run_id for e in recorder.events} == {failed}
    assert before != ignored


def test_a_slow_or_raising_callback_does_not_hold_up_the_others(
    pgflow_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    slow_calls: list[ListenerEvent] = []
    raised: list[ListenerEvent] = []
    fast = Recorder()

    def slow(event: ListenerEvent) -> None:
        slow_calls.append(event)
        release.wait(30)

    def raising(event: ListenerEvent) -> None:
        raised.append(event)
        raise ValueError(f"cannot handle {event.event_type}")

    try:
        with (
            running_worker([two_step_flow()], pgflow_database_url, **FAST),
            Listener(pgflow_database_url) as listener,
            Client(pgflow_database_url) as client,
        ):
            listener.on("*", slow)
            listener.on("*", raising)
            listener.on("*", fast.callback("fast"))
            run_id = client.start_flow("listened", {"n": 1}).run_id
            fast.wait_for(run_id, "run:completed")
            assert len(slow_calls) == 1  # still busy with the first event
            release.set()
    finally:
        release.set()
    assert summary(fast.of_run(run_id)) == expected_success(run_id)
    assert summary(slow_calls) == expected_success(run_id)  # drained on stop, in order
    assert summary(raised) == expected_success(run_id)  # kept being called after raising
    assert "listener callback" in caplog.text
    assert "cannot handle run:started" in caplog.text


def test_coroutine_callbacks_in_the_sync_listener(pgflow_database_url: str) -> None:
    received: list[ListenerEvent] = []

    async def note(event: ListenerEvent) -> None:
        await asyncio.sleep(0)
        received.append(event)

    with (
        running_worker([two_step_flow()], pgflow_database_url, **FAST),
        Listener(pgflow_database_url) as listener,
        Client(pgflow_database_url) as client,
    ):
        listener.on("*", note)
        run_id = client.start_flow_sync("listened", {"n": 3}, timeout=30).run_id
        deadline = time.monotonic() + 30
        while len(received) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert summary(received) == expected_success(run_id)


def test_a_resumed_run_reports_its_steps_again(pgflow_database_url: str) -> None:
    flow = Flow("flaky", timeout=5, max_attempts=1)
    attempts: list[int] = []

    @flow.step
    def once_broken(run: Any) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time")
        return len(attempts)

    recorder = Recorder()
    with (
        running_worker([flow], pgflow_database_url, **FAST),
        Listener(pgflow_database_url) as listener,
        Client(pgflow_database_url) as client,
    ):
        listener.on("*", recorder.callback("all"))
        run_id = client.start_flow("flaky", {}).run_id
        recorder.wait_for(run_id, "run:failed")
        client.resume_run(run_id)
        recorder.wait_for(run_id, "run:completed")
    assert summary(recorder.of_run(run_id)) == [
        ("run:started", run_id, None),
        ("step:started", run_id, "once_broken"),
        ("step:failed", run_id, "once_broken"),
        ("run:failed", run_id, None),
        ("run:resumed", run_id, None),
        ("step:started", run_id, "once_broken"),
        ("step:completed", run_id, "once_broken"),
        ("run:completed", run_id, None),
    ]


def test_registration_is_checked(pgflow_database_url: str) -> None:
    listener = Listener(pgflow_database_url)
    with pytest.raises(ValueError, match="event type must be"):
        listener.on("started", print)
    with pytest.raises(TypeError, match="must be callable"):
        listener.on("run:started", "print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of flow slugs"):
        Listener(pgflow_database_url, flows="listened")
    with pytest.raises(ValueError, match="catch_up_margin"):
        Listener(pgflow_database_url, catch_up_margin=-1)
    assert listener.on("run:cancelled", print) is print  # event types of newer cores are fine

    @listener.on("step:failed")
    def as_decorator(event: ListenerEvent) -> None: ...

    assert callable(as_decorator)
    assert listener.on_run_failed(as_decorator) is as_decorator


# -- surviving a killed connection ---------------------------------------------------------------


@pytest.fixture
def listener_role(
    pgflow_test_server: TestDatabaseServer, pgflow_database_url: str
) -> Iterator[tuple[str, str]]:
    """A login role that may read the pgflow tables, and a URL connecting as it: the test
    forbids it to log in to hold the listener off for a while."""
    role = f"pgflow_listener_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA pgflow TO {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA pgflow TO {}").format(
                sql.Identifier(role)
            )
        )
    try:
        yield role, make_conninfo(pgflow_database_url, user=role)
    finally:
        with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def set_login(admin_url: str, role: str, allowed: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER ROLE {} {}").format(
                sql.Identifier(role), sql.SQL("LOGIN" if allowed else "NOLOGIN")
            )
        )


def terminate_listener(url: str, application_name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            (application_name,),
        ).fetchall()
    assert killed == [(True,)]


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def run_and_wait(url: str, n: int) -> uuid.UUID:
    """A run of the two-step flow, waited for by polling (not through LISTEN)."""
    with Client(url, listen=False, poll_interval=0.05) as client:
        return client.start_flow_sync("listened", {"n": n}, timeout=30).run_id


def test_a_listener_keeps_delivering_after_its_connection_is_killed(
    pgflow_test_server: TestDatabaseServer,
    pgflow_database_url: str,
    listener_role: tuple[str, str],
) -> None:
    role, role_url = listener_role
    name = f"pgflow-listener-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    with (
        running_worker([two_step_flow()], pgflow_database_url, **FAST),
        Listener(role_url, application_name=name) as listener,
    ):
        recorder.register_all_six(listener)
        before = run_and_wait(pgflow_database_url, 1)
        recorder.wait_for(before, "run:completed")

        # The server ends the connection, and the listener may not log in again for a while:
        # the whole of the next run happens while it is away.
        set_login(pgflow_test_server.admin_url, role, allowed=False)
        try:
            terminate_listener(pgflow_database_url, name)
            wait_until(lambda: not listener.listening)
            during = run_and_wait(pgflow_database_url, 2)
            time.sleep(0.5)
            assert recorder.of_run(during) == []
        finally:
            set_login(pgflow_test_server.admin_url, role, allowed=True)
        recorder.wait_for(during, "run:completed")
        wait_until(lambda: listener.listening)

        after = run_and_wait(pgflow_database_url, 3)
        recorder.wait_for(after, "run:completed")

        # A plain kill, with the reconnect at once, loses nothing either.
        terminate_listener(pgflow_database_url, name)
        last = run_and_wait(pgflow_database_url, 4)
        recorder.wait_for(last, "run:completed")

    for run_id in (before, during, after, last):  # each transition exactly once, in order
        assert summary(recorder.of_run(run_id)) == expected_success(run_id)
    assert all(e.caught_up for e in recorder.of_run(during))
    assert not any(e.caught_up for e in recorder.of_run(before) + recorder.of_run(after))
    sequences = [e.sequence for e in recorder.events]
    assert sorted(sequences) == list(range(1, len(sequences) + 1))


# -- async ----------------------------------------------------------------------------------------


async def test_async_listener_with_async_and_sync_callbacks(
    pgflow_database_url: str,
    pgflow_test_server: TestDatabaseServer,
    listener_role: tuple[str, str],
) -> None:
    role, role_url = listener_role
    name = f"pgflow-alistener-{uuid.uuid4().hex[:8]}"
    from_async: list[ListenerEvent] = []
    from_sync: list[ListenerEvent] = []
    release = asyncio.Event()
    slow_calls: list[ListenerEvent] = []

    async def collect(event: ListenerEvent) -> None:
        from_async.append(event)

    async def slow(event: ListenerEvent) -> None:
        slow_calls.append(event)
        await release.wait()

    async def completed(run_id: uuid.UUID) -> None:
        for _ in range(600):
            if any(e.run_id == run_id and e.event_type == "run:completed" for e in from_async):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"run {run_id} never reported: {from_async}")

    def run_ids(events: list[ListenerEvent], run_id: uuid.UUID) -> list[ListenerEvent]:
        return [e for e in events if e.run_id == run_id]

    async with (
        Worker([two_step_flow()], database_url=pgflow_database_url, **FAST),
        AsyncListener(role_url, application_name=name) as listener,
    ):
        listener.on("*", collect)
        listener.on("*", from_sync.append)
        listener.on_run_started(slow)
        first = await asyncio.to_thread(run_and_wait, pgflow_database_url, 1)
        await completed(first)
        assert len(slow_calls) == 1

        await asyncio.to_thread(set_login, pgflow_test_server.admin_url, role, False)
        try:
            await asyncio.to_thread(terminate_listener, pgflow_database_url, name)
            for _ in range(200):
                if not listener.listening:
                    break
                await asyncio.sleep(0.05)
            assert not listener.listening
            during = await asyncio.to_thread(run_and_wait, pgflow_database_url, 2)
        finally:
            await asyncio.to_thread(set_login, pgflow_test_server.admin_url, role, True)
        await completed(during)
        release.set()

    for run_id in (first, during):
        assert summary(run_ids(from_async, run_id)) == expected_success(run_id)
        assert summary(run_ids(from_sync, run_id)) == expected_success(run_id)
    assert all(e.caught_up for e in run_ids(from_async, during))
    assert summary(slow_calls) == [("run:started", first, None), ("run:started", during, None)]
