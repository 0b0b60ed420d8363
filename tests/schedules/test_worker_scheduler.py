"""Workers fire schedules end to end. No test waits for a real minute: schedules are moved back
in time (``backdate``), so that their missed occurrences are due at once."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from pgflow import Client
from pgflow.worker import Worker
from pgflow.worker._scheduler import RETRY_AFTER, Scheduler

from .conftest import Conn, backdate, echo_flow, make_flow, run_count

FAST = {
    "poll_interval": 0.2,
    "heartbeat_interval": 0.5,
    "summary_interval": 3600,
    "scheduler_interval": 0.2,
}


async def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def database_now(conn: Conn) -> datetime:
    row = conn.execute("SELECT clock_timestamp() AS now").fetchone()
    assert row is not None
    return row["now"]  # type: ignore[no-any-return]


def occurrences(conn: Conn, backlog_until: datetime) -> dict[str, int]:
    """The schedule's fired occurrences: those of the backlog (due at ``backlog_until``), all
    of them, and their runs. A test that crosses a minute boundary also fires the new minute's
    occurrence, rightly; only the backlog's count is fixed."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE scheduled_for <= %s) AS backlog,"
        " count(DISTINCT scheduled_for) AS fired, count(DISTINCT run_id) AS runs"
        " FROM pgflow.schedule_occurrences",
        (backlog_until,),
    ).fetchone()
    assert row is not None
    return dict(row)


def runs(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT status, input, output FROM pgflow.runs ORDER BY started_at"
    ).fetchall()


async def test_a_declared_schedule_is_registered_and_fired(
    pgflow_database_url: str, pgflow_conn: Conn
) -> None:
    flow = echo_flow(schedule="* * * * *", schedule_input={"hello": "world"})
    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        schedule = Client(conn=pgflow_conn, listen=False).get_schedule("tick")
        assert (schedule.cron, schedule.enabled, schedule.input) == (
            "* * * * *",
            True,
            {"hello": "world"},
        )
        backdate(pgflow_conn, "tick", 10)
        backlog_until = database_now(pgflow_conn)
        await wait_for(lambda: [r["status"] for r in runs(pgflow_conn)][:1] == ["completed"])
        await asyncio.sleep(0.6)  # a few more scheduler passes: nothing more is due
    # Ten missed occurrences, max_catch_up 1: only the latest ran.
    fired = occurrences(pgflow_conn, backlog_until)
    assert fired["backlog"] == 1
    assert fired["fired"] == fired["runs"] == run_count(pgflow_conn)
    assert runs(pgflow_conn)[0] == {
        "status": "completed",
        "input": {"hello": "world"},
        "output": {"only": {"hello": "world"}},
    }


async def test_two_workers_fire_each_occurrence_once(
    pgflow_database_url: str, pgflow_conn: Conn
) -> None:
    make_flow(pgflow_conn)
    Client(conn=pgflow_conn, listen=False).schedule("tick", "* * * * *", max_catch_up=5)
    async with (
        Worker([echo_flow()], database_url=pgflow_database_url, **FAST),
        Worker([echo_flow()], database_url=pgflow_database_url, **FAST),
    ):
        backdate(pgflow_conn, "tick", 10)
        backlog_until = database_now(pgflow_conn)
        await wait_for(lambda: run_count(pgflow_conn) >= 5)
        await asyncio.sleep(0.6)
    # Each occurrence fired once, by one of the two workers: as many runs as occurrences.
    fired = occurrences(pgflow_conn, backlog_until)
    assert fired["backlog"] == 5
    assert fired["fired"] == fired["runs"] == run_count(pgflow_conn)


async def test_without_the_scheduler_nothing_fires(
    pgflow_database_url: str, pgflow_conn: Conn
) -> None:
    make_flow(pgflow_conn)
    Client(conn=pgflow_conn, listen=False).schedule("tick", "* * * * *")
    backdate(pgflow_conn, "tick", 10)
    declared = echo_flow()
    declared.schedule("@hourly", name="declared")
    async with Worker([declared], database_url=pgflow_database_url, scheduler=False, **FAST):
        await asyncio.sleep(1.0)
    assert run_count(pgflow_conn) == 0
    names = pgflow_conn.execute("SELECT schedule_name FROM pgflow.schedules").fetchall()
    assert names == [{"schedule_name": "tick"}]


async def test_restarting_a_worker_keeps_an_operators_disable(
    pgflow_database_url: str, pgflow_conn: Conn
) -> None:
    flow = echo_flow(schedule="* * * * *")
    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        pass
    client = Client(conn=pgflow_conn, listen=False)
    client.set_schedule_enabled("tick", False)
    async with Worker([echo_flow(schedule="* * * * *")], database_url=pgflow_database_url, **FAST):
        assert not client.get_schedule("tick").enabled
        backdate(pgflow_conn, "tick", 10)
        await asyncio.sleep(0.6)
    assert run_count(pgflow_conn) == 0


async def test_passes_sleep_until_the_next_occurrence_and_survive_a_broken_schedule(
    pgflow_database_url: str, pgflow_conn: Conn
) -> None:
    make_flow(pgflow_conn)
    client = Client(conn=pgflow_conn, listen=False)
    client.schedule("tick", "* * * * *", name="good")
    client.schedule("tick", "* * * * *", name="broken")
    # Written around the API: a cron the scheduler cannot read.
    pgflow_conn.execute("UPDATE pgflow.schedules SET cron = '* *' WHERE schedule_name = 'broken'")
    backdate(pgflow_conn, "good", 10)
    backdate(pgflow_conn, "broken", 10)
    async with AsyncConnectionPool(
        pgflow_database_url, kwargs={"autocommit": True}, open=False
    ) as pool:
        scheduler = Scheduler(pool, [echo_flow()], interval=60)
        assert await scheduler.run_once() == 0  # fired "good": look again at once
        assert run_count(pgflow_conn) == 1
        # "good" is next due at the next minute; "broken" waits for its retry.
        sleep = await scheduler.run_once()
        next_good = client.get_schedule("good").next_occurrence_at
        assert next_good is not None
        due_in = (next_good - datetime.now(UTC)).total_seconds()
        assert min(due_in, RETRY_AFTER) - 1 < sleep <= min(due_in, RETRY_AFTER) + 0.1
    assert run_count(pgflow_conn) == 1


async def test_a_core_without_schedules_only_warns(
    pgflow_database_url: str, pgflow_conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    # An upstream core (or one not upgraded) has no pgflow.fire_schedule.
    pgflow_conn.execute("DROP FUNCTION pgflow.fire_schedule(text, timestamptz)")
    flow = echo_flow(schedule="* * * * *")
    with caplog.at_level(logging.WARNING, logger="pgflow.scheduler"):
        async with Worker([flow], database_url=pgflow_database_url, **FAST) as worker:
            assert "pgflow:scheduler" not in {t.get_name() for t in worker._background}
    assert "has no schedules (run `pgflow install`)" in caplog.text
