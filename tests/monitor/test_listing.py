"""list_runs (filters, keyset pages across equal start times, empty windows), history,
cleanup_older_than, workers, queues and flows on generated data; sync and async."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from pgflow.client import Client
from pgflow.errors import InvalidInputError
from pgflow.monitor import AsyncMonitor, Monitor, RunSummary
from tests.monitor._data import BASE, MadeRun, create_flows, insert_runs, known_history

#: Seven runs started in the same transaction (equal started_at), to page through.
TIED = BASE + timedelta(hours=1, minutes=30)


def history_with_ties() -> list[MadeRun]:
    tied = [MadeRun("beta", "completed", TIED, float(n)) for n in range(7)]
    return known_history() + tied


@pytest.fixture
def runs() -> list[MadeRun]:
    return history_with_ties()


@pytest.fixture
def url(pgflow_database_url: str, runs: list[MadeRun]) -> str:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        insert_runs(conn, runs)
    return pgflow_database_url


@pytest.fixture
def monitor(url: str) -> Any:
    with Monitor(url, max_pool_size=1) as found:
        yield found


def newest_first(runs: list[MadeRun]) -> list[uuid.UUID]:
    return [r.run_id for r in sorted(runs, key=lambda r: (r.started_at, r.run_id), reverse=True)]


def all_pages(monitor: Monitor, **filters: Any) -> tuple[list[uuid.UUID], int]:
    seen: list[uuid.UUID] = []
    pages = 0
    cursor = None
    while True:
        page = monitor.list_runs(cursor=cursor, **filters)
        pages += 1
        seen += [r.run_id for r in page.runs]
        if page.next_cursor is None:
            return seen, pages
        cursor = page.next_cursor


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": "completed"},
        {"status": "failed"},
        {"status": "started"},
        {"flow": "alpha"},
        {"flow": "beta", "status": "completed"},
        {"since": BASE + timedelta(minutes=60)},
        {"until": BASE + timedelta(minutes=60)},
        {"flow": "alpha", "since": BASE + timedelta(minutes=20), "until": TIED},
        {"status": "completed", "since": TIED, "until": TIED + timedelta(seconds=1)},
    ],
)
def test_filters_and_pages(monitor: Monitor, runs: list[MadeRun], filters: dict[str, Any]) -> None:
    def wanted(run: MadeRun) -> bool:
        return (
            filters.get("status", run.status) == run.status
            and filters.get("flow", run.flow) == run.flow
            and filters.get("since", run.started_at) <= run.started_at
            and run.started_at < filters.get("until", run.started_at + timedelta(1))
        )

    expected = newest_first([r for r in runs if wanted(r)])
    assert expected  # every case selects something
    whole = monitor.list_runs(**filters, limit=1000)
    assert [r.run_id for r in whole.runs] == expected
    assert whole.next_cursor is None
    paged, pages = all_pages(monitor, **filters, limit=3)
    assert paged == expected
    assert pages == max(1, -(-len(expected) // 3))


def test_pages_split_runs_that_started_together(monitor: Monitor, runs: list[MadeRun]) -> None:
    tied = newest_first([r for r in runs if r.started_at == TIED])
    first = monitor.list_runs(since=TIED, until=TIED + timedelta(seconds=1), limit=3)
    assert [r.run_id for r in first.runs] == tied[:3]
    second = monitor.list_runs(
        since=TIED, until=TIED + timedelta(seconds=1), limit=3, cursor=first.next_cursor
    )
    assert [r.run_id for r in second.runs] == tied[3:6]
    assert second.next_cursor is not None
    third = monitor.list_runs(
        since=TIED, until=TIED + timedelta(seconds=1), limit=3, cursor=second.next_cursor
    )
    assert [r.run_id for r in third.runs] == tied[6:]
    assert third.next_cursor is None


def test_summaries(monitor: Monitor, runs: list[MadeRun]) -> None:
    page = monitor.list_runs(flow="alpha", status="failed")
    made = {r.run_id: r for r in runs}
    assert [(s.status, s.error) for s in page.runs] == [
        ("failed", "oops"),
        ("failed", "boom"),
        ("failed", "boom"),
    ]
    for summary in page.runs:
        run = made[summary.run_id]
        assert summary.started_at == run.started_at
        assert summary.failed_at == run.finished_at
        assert summary.completed_at is None
        assert summary.duration == timedelta(seconds=run.seconds)
        assert summary.remaining_steps == 2
    running = monitor.list_runs(status="started").runs[0]
    assert (running.duration, running.error, running.completed_at) == (None, None, None)
    shown = json.loads(json.dumps(page.runs[0].as_dict()))
    assert shown == {
        "run_id": str(page.runs[0].run_id),
        "flow_slug": "alpha",
        "status": "failed",
        "started_at": (BASE + timedelta(minutes=127)).isoformat(),
        "completed_at": None,
        "failed_at": (BASE + timedelta(minutes=127, seconds=1)).isoformat(),
        "duration": 1.0,
        "remaining_steps": 2,
        "error": "oops",
        "cancelled_at": None,
        "cancel_reason": None,
    }


def test_empty_results(monitor: Monitor) -> None:
    before = monitor.list_runs(until=BASE)
    assert before.runs == ()
    assert before.next_cursor is None
    assert monitor.list_runs(flow="nope").runs == ()
    assert monitor.history(since=datetime.now(UTC)) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"status": "running"}, "status must be one of started, completed, failed"),
        ({"limit": 0}, "limit must be between 1 and 1000, got 0"),
        ({"cursor": "not-a-cursor"}, "invalid cursor 'not-a-cursor'"),
        # A NUL character cannot even reach the server (it used to be a DataError there).
        ({"flow": "bad\x00slug"}, "is not a flow slug: a slug may contain only ASCII"),
    ],
)
def test_bad_listing_arguments(monitor: Monitor, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        monitor.list_runs(**arguments)


def test_the_client_lists_the_same_runs(url: str, monitor: Monitor) -> None:
    with Client(url, listen=False, max_pool_size=1) as client:
        by_client = client.list_runs(flow="alpha", limit=4)
    by_monitor = monitor.list_runs(flow="alpha", limit=4)
    assert [r.run_id for r in by_client.runs] == [r.run_id for r in by_monitor.runs]
    assert by_client.next_cursor == by_monitor.next_cursor


def test_history_is_most_recently_finished_first(monitor: Monitor, runs: list[MadeRun]) -> None:
    finished = [r for r in runs if r.finished_at is not None]
    by_finish = sorted(finished, key=lambda r: (r.finished_at, r.run_id), reverse=True)
    found = monitor.history(limit=1000)
    assert [r.run_id for r in found] == [r.run_id for r in by_finish]
    assert all(isinstance(r, RunSummary) for r in found)
    assert [r.run_id for r in monitor.history(limit=2)] == [r.run_id for r in by_finish[:2]]
    since = BASE + timedelta(minutes=100)
    recent = monitor.history(since=since)
    assert [r.run_id for r in recent] == [
        r.run_id for r in by_finish if r.finished_at and r.finished_at >= since
    ]
    with pytest.raises(InvalidInputError, match="limit must be an integer between 1 and 1000"):
        monitor.history(limit=0)


def test_cleanup_older_than(pgflow_database_url: str) -> None:
    now = datetime.now(UTC)
    old = MadeRun("alpha", "completed", now - timedelta(days=10), 1.0)
    old_failed = MadeRun("beta", "failed", now - timedelta(days=8), 1.0, "x")
    old_running = MadeRun("alpha", "started", now - timedelta(days=9))
    fresh = MadeRun("alpha", "completed", now - timedelta(days=2), 1.0)
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        insert_runs(conn, [old, old_failed, old_running, fresh])
    with Monitor(pgflow_database_url, max_pool_size=1) as monitor:
        with pytest.raises(InvalidInputError, match="days must not be negative, got -1"):
            monitor.cleanup_older_than(days=-1)
        with pytest.raises(InvalidInputError, match="days must be a finite number, got nan"):
            monitor.cleanup_older_than(days=float("nan"))
        assert len(monitor.list_runs().runs) == 4  # refused calls deleted nothing
        result = monitor.cleanup_older_than(days=7.5)
        assert (result.runs, result.step_states) == (2, 3)  # alpha has two steps, beta one
        left = {r.run_id for r in monitor.list_runs().runs}
        assert left == {old_running.run_id, fresh.run_id}
        assert monitor.cleanup_older_than(days=7.5).runs == 0


def test_workers(pgflow_database_url: str) -> None:
    ids = [uuid.UUID(int=n) for n in range(1, 6)]
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name, started_at, "
            "last_heartbeat_at, deprecated_at) VALUES "
            "(%s, 'alpha', 'fresh', now() - interval '1 hour', now() - interval '2 seconds', "
            " NULL), "
            "(%s, 'beta', 'fresher', now() - interval '1 hour', now(), NULL), "
            "(%s, 'alpha', 'silent', now() - interval '1 hour', now() - interval '31 seconds', "
            " NULL), "
            "(%s, 'alpha', 'deprecated', now() - interval '1 hour', now(), now()), "
            "(%s, 'beta', 'old', now() - interval '2 hours', now() - interval '1 hour', NULL)",
            ids,
        )
    with Monitor(pgflow_database_url, max_pool_size=1) as monitor:
        live = monitor.workers()
        everyone = monitor.workers(include_stopped=True)
    assert [(w.worker_id, w.flow_slug, w.status) for w in live] == [
        (ids[1], "beta", "alive"),
        (ids[0], "alpha", "alive"),
    ]
    assert [(w.function_name, w.status) for w in everyone] == [
        ("fresher", "alive"),  # the same heartbeat: by worker id
        ("deprecated", "deprecated"),
        ("fresh", "alive"),
        ("silent", "silent"),
        ("old", "silent"),
    ]
    assert live[1].heartbeat_age == pytest.approx(2, abs=1)
    assert all(w.stopped_at is None for w in everyone)
    shown = json.loads(json.dumps(live[0].as_dict()))
    assert shown["worker_id"] == str(ids[1])
    assert shown["deprecated_at"] is None


def test_workers_stopped_by_a_newer_core(pgflow_database_url: str) -> None:
    """Cores from pgflow 0.10 have workers.stopped_at; a stopped worker is not live."""
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        conn.execute("ALTER TABLE pgflow.workers ADD COLUMN stopped_at timestamptz")
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name, stopped_at) "
            "VALUES (gen_random_uuid(), 'alpha', 'gone', now()), "
            "(gen_random_uuid(), 'alpha', 'here', NULL)"
        )
    with Monitor(pgflow_database_url, max_pool_size=1) as monitor:
        assert [w.function_name for w in monitor.workers()] == ["here"]
        stopped = [w for w in monitor.workers(include_stopped=True) if w.status == "stopped"]
    assert [w.function_name for w in stopped] == ["gone"]
    assert stopped[0].stopped_at is not None


def test_flows(pgflow_database_url: str) -> None:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pgflow.create_flow('shape', max_attempts => 5, base_delay => 2, timeout => 30)"
        )
        conn.execute("SELECT pgflow.add_step('shape', 'root', step_type => 'single')")
        conn.execute("SELECT pgflow.add_step('shape', 'side', timeout => 9)")
        conn.execute(
            "SELECT pgflow.add_step('shape', 'each', ARRAY['root'], step_type => 'map', "
            "start_delay => 2)"
        )
        conn.execute("SELECT pgflow.add_step('shape', 'join', ARRAY['side', 'each'])")
        conn.execute("SELECT pgflow.create_flow('empty')")
    with Monitor(pgflow_database_url, max_pool_size=1) as monitor:
        found = monitor.flows()
    assert [f.flow_slug for f in found] == ["empty", "shape"]
    assert found[0].steps == ()
    shape = found[1]
    assert shape.options == {"max_attempts": 5, "base_delay": 2, "timeout": 30}
    assert [(s.step_slug, s.step_type, s.step_index, s.deps) for s in shape.steps] == [
        ("root", "single", 0, ()),
        ("side", "single", 1, ()),
        ("each", "map", 2, ("root",)),
        ("join", "single", 3, ("each", "side")),
    ]
    assert shape.steps[1].options == {
        "max_attempts": None,
        "base_delay": None,
        "timeout": 9,
        "start_delay": None,
    }
    assert shape.steps[2].options["start_delay"] == 2
    assert json.loads(json.dumps(shape.as_dict()))["steps"][2]["deps"] == ["root"]


async def test_async_listing(url: str, runs: list[MadeRun]) -> None:
    async with AsyncMonitor(url, max_pool_size=1) as monitor:
        first = await monitor.list_runs(status="completed", limit=5)
        second = await monitor.list_runs(status="completed", limit=5, cursor=first.next_cursor)
        history = await monitor.history(limit=3)
        workers = await monitor.workers(include_stopped=True)
        queues = await monitor.queues()
        flows = await monitor.flows()
        with pytest.raises(InvalidInputError):
            await monitor.cleanup_older_than(days=-1)
        pruned = await monitor.cleanup_older_than(days=100_000)
    expected = newest_first([r for r in runs if r.status == "completed"])
    assert [r.run_id for r in first.runs + second.runs] == expected[:10]
    with Monitor(url, max_pool_size=1) as sync_monitor:
        assert history == sync_monitor.history(limit=3)
    assert workers == []
    assert [(q.flow_slug, q.depth) for q in queues] == [("alpha", 0), ("beta", 0)]
    assert [f.flow_slug for f in flows] == ["alpha", "beta"]
    assert pruned.runs == 0


def test_connection_conventions(url: str) -> None:
    """Like the client: a URL, a pool, or a connection the caller keeps; never two of them."""
    with psycopg.connect(url, autocommit=True) as conn:
        with Monitor(conn=conn) as on_conn:
            assert len(on_conn.list_runs(limit=5).runs) == 5
        assert not conn.closed  # the caller's connection stays the caller's
        with pytest.raises(ValueError, match="one of database_url, pool or conn"):
            Monitor(url, conn=conn)
    with ConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        with Monitor(pool=pool) as on_pool:
            assert [f.flow_slug for f in on_pool.flows()] == ["alpha", "beta"]
        assert not pool.closed


async def test_async_connection_conventions(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        async with AsyncMonitor(conn=conn) as on_conn:
            assert len((await on_conn.list_runs(limit=5)).runs) == 5
        assert not conn.closed
