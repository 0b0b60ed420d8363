"""Metrics over a window on generated history: every figure against the answer computed here
from the generated runs (exact counts, exact interpolated percentiles), with filters and
empty windows; sync and async."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from pgflow.errors import FlowNotFoundError, InvalidInputError
from pgflow.monitor import AsyncMonitor, Metrics, Monitor
from tests.monitor._data import (
    BASE,
    FLOWS,
    MadeRun,
    create_flows,
    insert_runs,
    known_history,
    percentile_cont,
)

WINDOW = {"since": BASE, "until": BASE + timedelta(hours=6)}


@pytest.fixture
def history_url(pgflow_database_url: str) -> str:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        insert_runs(conn, known_history())
    return pgflow_database_url


@pytest.fixture
def monitor(history_url: str) -> Any:
    with Monitor(history_url, max_pool_size=1) as found:
        yield found


def expected(runs: list[MadeRun], top: int = 10) -> dict[str, Any]:
    """The figures the monitor must report for ``runs`` over WINDOW."""
    completed = [r for r in runs if r.status == "completed"]
    failed = [r for r in runs if r.status == "failed"]
    durations = [r.seconds for r in completed]
    steps: dict[tuple[str, str], list[float]] = {}
    for run in completed:
        for slug, seconds in run.step_seconds().items():
            steps.setdefault((run.flow, slug), []).append(seconds)
    per_step = {
        key: (len(v), sum(v) / len(v), percentile_cont(v, 0.95), max(v)) for key, v in steps.items()
    }
    reasons = Counter(r.error for r in failed)
    hours = Counter(r.started_at.replace(minute=0, second=0, microsecond=0) for r in runs)
    return {
        "total": len(runs),
        "completed": len(completed),
        "failed": len(failed),
        "running": sum(r.status == "started" for r in runs),
        "durations": durations,
        "per_step": per_step,
        "reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:top],
        "hours": sorted(hours.items(), key=lambda kv: (-kv[1], -kv[0].timestamp()))[:top],
    }


def check(found: Metrics, runs: list[MadeRun], top: int = 10) -> None:
    want = expected(runs, top)
    assert found.total_runs == want["total"]
    assert (found.completed, found.failed, found.running) == (
        want["completed"],
        want["failed"],
        want["running"],
    )
    assert found.success_rate == pytest.approx(
        want["completed"] / (want["completed"] + want["failed"])
    )
    d = found.run_duration
    assert d.count == len(want["durations"])
    assert d.avg == pytest.approx(sum(want["durations"]) / len(want["durations"]))
    assert d.p50 == pytest.approx(percentile_cont(want["durations"], 0.5))
    assert d.p95 == pytest.approx(percentile_cont(want["durations"], 0.95))
    assert d.max == pytest.approx(max(want["durations"]))
    got_steps = {(s.flow_slug, s.step_slug): (s.count, s.avg, s.p95, s.max) for s in found.steps}
    assert got_steps.keys() == want["per_step"].keys()
    for key, figures in want["per_step"].items():
        assert got_steps[key] == pytest.approx(figures), key
    by_p95 = sorted(want["per_step"], key=lambda k: (-want["per_step"][k][2], k))[:top]
    assert [(s.flow_slug, s.step_slug) for s in found.slowest_steps] == by_p95
    assert [(r.error, r.count) for r in found.failure_reasons] == want["reasons"]
    assert [(h.hour, h.runs) for h in found.busy_hours] == want["hours"]
    window_minutes = (found.until - found.since).total_seconds() / 60
    assert found.throughput_per_minute == pytest.approx(
        (want["completed"] + want["failed"]) / window_minutes
    )


def test_every_figure_over_all_flows(monitor: Monitor) -> None:
    found = monitor.metrics(**WINDOW)
    check(found, known_history())
    # Spelled out once, to see the helper's arithmetic is not fooling itself.
    assert (found.total_runs, found.completed, found.failed, found.running) == (18, 12, 4, 2)
    assert found.by_status == {"completed": 12, "failed": 4, "started": 2}
    assert found.success_rate == pytest.approx(0.75)
    durations = sorted([float(i) for i in range(1, 11)] + [0.5, 1.5])
    assert found.run_duration.p50 == pytest.approx((durations[5] + durations[6]) / 2)
    assert found.run_duration.p95 == pytest.approx(9 + 0.45 * 1)  # rank 10.45 of 0..11
    assert [(r.error, r.count) for r in found.failure_reasons] == [("boom", 3), ("oops", 1)]


def test_flow_filter(monitor: Monitor) -> None:
    for flow in FLOWS:
        found = monitor.metrics(**WINDOW, flow=flow)
        assert found.flow == flow
        check(found, [r for r in known_history() if r.flow == flow])
        assert [q.flow_slug for q in found.queues] == [flow]
        assert set(found.live_workers) == {flow}


def test_window_bounds_are_since_inclusive_until_exclusive(monitor: Monitor) -> None:
    runs = known_history()
    since, until = BASE + timedelta(minutes=20), BASE + timedelta(minutes=120)
    found = monitor.metrics(since=since, until=until)
    check(found, [r for r in runs if since <= r.started_at < until])
    # alpha at 20 (== since), 40, 60, 80, 100 min, its failure at 67, beta at 65; alpha at
    # 120 min (== until) is out
    assert found.total_runs == 7


def test_top_limits_every_list(monitor: Monitor) -> None:
    found = monitor.metrics(**WINDOW, top=1)
    check(found, known_history(), top=1)
    assert len(found.failure_reasons) == len(found.busy_hours) == len(found.slowest_steps) == 1
    assert len(found.steps) == 3


def test_empty_window(monitor: Monitor) -> None:
    found = monitor.metrics(since=BASE - timedelta(days=2), until=BASE - timedelta(days=1))
    assert (found.total_runs, found.completed, found.failed, found.running) == (0, 0, 0, 0)
    assert found.by_status == {}
    assert found.success_rate is None
    assert found.run_duration.as_dict() == {
        "count": 0,
        "avg": None,
        "p50": None,
        "p95": None,
        "max": None,
    }
    assert found.steps == found.slowest_steps == found.failure_reasons == found.busy_hours == ()
    assert found.throughput_per_minute == 0
    json.dumps(found.as_dict())


def test_default_window_is_the_last_24_hours(pgflow_database_url: str) -> None:
    now = datetime.now(UTC)
    runs = [
        MadeRun("beta", "completed", now - timedelta(hours=1), 2.0),
        MadeRun("beta", "failed", now - timedelta(hours=23), 1.0, "late"),
        MadeRun("beta", "completed", now - timedelta(hours=25), 5.0),
    ]
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        insert_runs(conn, runs)
    with Monitor(pgflow_database_url, max_pool_size=1) as monitor:
        found = monitor.metrics()
    assert found.until - found.since == timedelta(hours=24)
    assert abs((found.until - now).total_seconds()) < 60
    check(found, runs[:2])


def test_metrics_as_dict_is_json(monitor: Monitor) -> None:
    shown = json.loads(json.dumps(monitor.metrics(**WINDOW).as_dict()))
    assert shown["since"] == BASE.isoformat()
    assert shown["run_duration"]["max"] == 10.0
    # 5 runs started at 10:xx and 5 at 11:xx: the later hour first
    assert shown["busy_hours"][:2] == [
        {"hour": "2026-03-01T11:00:00+00:00", "runs": 5},
        {"hour": "2026-03-01T10:00:00+00:00", "runs": 5},
    ]
    assert shown["failure_reasons"][0] == {"error": "boom", "count": 3}
    assert shown["by_status"] == {"completed": 12, "failed": 4, "started": 2}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"top": 0}, "top must be an integer between 1 and 1000, got 0"),
        ({"top": True}, "top must be an integer between 1 and 1000, got True"),
        (
            {"since": BASE, "until": BASE},
            "since (2026-03-01T10:00:00+00:00) must be before until (2026-03-01T10:00:00+00:00)",
        ),
        (
            {"since": datetime(2026, 3, 1)},  # naive: the point of the test
            "since must be timezone-aware, got 2026-03-01T00:00:00",
        ),
    ],
)
def test_bad_arguments_are_refused(
    monitor: Monitor, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        monitor.metrics(**arguments)
    assert str(raised.value) == message


def test_a_default_window_before_year_one_starts_at_year_one(monitor: Monitor) -> None:
    # 24 hours before this until is before year 1, which Python cannot represent.
    until = datetime(1, 1, 1, 5, tzinfo=UTC)
    found = monitor.metrics(until=until)
    assert (found.since, found.until) == (datetime.min.replace(tzinfo=UTC), until)
    assert found.total_runs == 0


def test_unknown_flow_is_refused(monitor: Monitor) -> None:
    with pytest.raises(FlowNotFoundError, match="flow 'nope' does not exist"):
        monitor.metrics(flow="nope")


def test_queues_and_live_workers(history_url: str) -> None:
    with psycopg.connect(history_url, autocommit=True) as conn:
        conn.execute("SELECT pgmq.send_batch('alpha', ARRAY['{}', '{}', '{}']::jsonb[])")
        conn.execute("SELECT pgmq.send('alpha', '{}', 3600)")  # not visible for an hour
        conn.execute("UPDATE pgmq.q_alpha SET enqueued_at = now() - interval '90 seconds'")
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name, "
            "last_heartbeat_at, deprecated_at) VALUES "
            "(gen_random_uuid(), 'alpha', 'w', now(), NULL), "
            "(gen_random_uuid(), 'alpha', 'w', now(), NULL), "
            "(gen_random_uuid(), 'alpha', 'w', now(), now()), "
            "(gen_random_uuid(), 'beta', 'w', now() - interval '31 seconds', NULL)"
        )
    with Monitor(history_url, max_pool_size=1) as monitor:
        found = monitor.metrics(**WINDOW)
        queues = monitor.queues()
    assert found.live_workers == {"alpha": 2, "beta": 0}
    assert [(q.flow_slug, q.depth, q.visible) for q in queues] == [("alpha", 4, 3), ("beta", 0, 0)]
    assert queues[0].oldest_message_age == pytest.approx(90, abs=5)
    assert queues[1].oldest_message_age is None
    assert [(q.flow_slug, q.depth, q.visible) for q in found.queues] == [
        ("alpha", 4, 3),
        ("beta", 0, 0),
    ]


async def test_async_monitor_reports_the_same(history_url: str) -> None:
    with Monitor(history_url, max_pool_size=1) as monitor:
        sync_found = monitor.metrics(**WINDOW, flow="alpha", top=3)
    async with AsyncMonitor(history_url, max_pool_size=1) as amonitor:
        async_found = await amonitor.metrics(**WINDOW, flow="alpha", top=3)
    check(async_found, [r for r in known_history() if r.flow == "alpha"], top=3)
    assert async_found.as_dict() == sync_found.as_dict()


def test_statuses_of_newer_cores_are_counted(history_url: str) -> None:
    """A status this monitor does not know (newer cores add some) is counted, not dropped."""
    with psycopg.connect(history_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE pgflow.runs DROP CONSTRAINT status_is_valid")
        conn.execute(
            "INSERT INTO pgflow.runs (flow_slug, status, input, started_at) "
            "VALUES ('beta', 'paused', '{}', %s)",
            (BASE + timedelta(minutes=1),),
        )
    with Monitor(history_url, max_pool_size=1) as monitor:
        found = monitor.metrics(**WINDOW)
    assert found.total_runs == 19
    assert found.by_status == {"completed": 12, "failed": 4, "paused": 1, "started": 2}
    assert (found.completed, found.failed, found.running) == (12, 4, 2)
    assert found.throughput_per_minute == pytest.approx(16 / 360)
