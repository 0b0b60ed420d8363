"""Firing at the SQL level: pgflow.fire_schedule and the scheduler's pass (fire_due), on a real
database. Exactly once per occurrence, also when schedulers race for it."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow import Client
from pgflow._ops import run
from pgflow._schedule_ops import fire_due

from .conftest import Conn, backdate, make_flow, run_count


def minute_ago(conn: Conn, minutes: int = 1) -> datetime:
    row = conn.execute(
        "SELECT date_trunc('minute', now()) - make_interval(mins => %s) AS t", (minutes,)
    ).fetchone()
    assert row is not None
    return row["t"]  # type: ignore[no-any-return]


def fire(conn: Conn, name: str, at: datetime) -> Any:
    row = conn.execute("SELECT pgflow.fire_schedule(%s, %s) AS run_id", (name, at)).fetchone()
    assert row is not None
    return row["run_id"]


@pytest.fixture
def client(pgflow_conn: Conn) -> Client:
    make_flow(pgflow_conn)
    return Client(conn=pgflow_conn, listen=False)


def test_an_occurrence_starts_exactly_one_run(pgflow_conn: Conn, client: Client) -> None:
    client.schedule("tick", "* * * * *", input={"n": 1})
    backdate(pgflow_conn, "tick", 10)
    at = minute_ago(pgflow_conn, 2)
    run_id = fire(pgflow_conn, "tick", at)
    assert run_id is not None
    again = fire(pgflow_conn, "tick", at)  # ON CONFLICT DO NOTHING: no second run
    assert again is None
    runs = pgflow_conn.execute("SELECT run_id, input, status FROM pgflow.runs").fetchall()
    assert runs == [{"run_id": run_id, "input": {"n": 1}, "status": "started"}]
    occurrence = pgflow_conn.execute("SELECT * FROM pgflow.schedule_occurrences").fetchone()
    assert occurrence is not None
    assert (occurrence["scheduled_for"], occurrence["run_id"]) == (at, run_id)
    assert client.get_schedule("tick").last_occurrence_at == at


def test_what_does_not_fire(pgflow_conn: Conn, client: Client) -> None:
    client.schedule("tick", "* * * * *")
    backdate(pgflow_conn, "tick", 10)
    active_since = client.get_schedule("tick").active_since
    assert fire(pgflow_conn, "tick", active_since) is None  # not after active_since
    assert fire(pgflow_conn, "tick", minute_ago(pgflow_conn, 20)) is None
    assert fire(pgflow_conn, "tick", minute_ago(pgflow_conn, 2)) is not None
    assert fire(pgflow_conn, "tick", minute_ago(pgflow_conn, 3)) is None  # older than the last
    client.set_schedule_enabled("tick", False)
    assert fire(pgflow_conn, "tick", minute_ago(pgflow_conn, 1)) is None  # disabled
    assert run_count(pgflow_conn) == 1
    with pytest.raises(psycopg.errors.NoDataFound, match="schedule nope does not exist"):
        fire(pgflow_conn, "nope", minute_ago(pgflow_conn))


def test_catch_up_is_bounded_to_the_latest_occurrences(pgflow_conn: Conn, client: Client) -> None:
    client.schedule("tick", "* * * * *", max_catch_up=3)
    backdate(pgflow_conn, "tick", 10)
    result = run(pgflow_conn, fire_due("tick"))
    latest = minute_ago(pgflow_conn, 0)
    assert [at for at, _ in result.fired] == [latest - timedelta(minutes=n) for n in (2, 1, 0)]
    assert result.skipped is not None
    assert result.skipped[1] == latest - timedelta(minutes=3)
    assert result.skipped[0] > latest - timedelta(minutes=11)
    assert result.next_occurrence_at == latest + timedelta(minutes=1)
    assert run_count(pgflow_conn) == 3
    # Not due any more: a second pass does nothing.
    assert not run(pgflow_conn, fire_due("tick")).claimed
    stored = client.get_schedule("tick")
    assert stored.last_occurrence_at == latest
    assert stored.overdue_since is None


def test_disabled_schedules_are_not_due(pgflow_conn: Conn, client: Client) -> None:
    client.schedule("tick", "* * * * *", enabled=False)
    backdate(pgflow_conn, "tick", 10)
    assert not run(pgflow_conn, fire_due("tick")).claimed
    assert run_count(pgflow_conn) == 0


def test_deleting_the_flow_deletes_its_schedules(pgflow_conn: Conn, client: Client) -> None:
    client.schedule("tick", "* * * * *")
    client.schedule("tick", "0 * * * *", name="hourly")
    backdate(pgflow_conn, "tick", 10)
    fire(pgflow_conn, "tick", minute_ago(pgflow_conn))
    pgflow_conn.execute("SELECT pgflow.delete_flow_and_data('tick')")
    for table in ("schedules", "schedule_occurrences"):
        row = pgflow_conn.execute(f"SELECT count(*) AS n FROM pgflow.{table}").fetchone()
        assert row == {"n": 0}, table


def test_occurrence_records_are_pruned_per_schedule(pgflow_conn: Conn, client: Client) -> None:
    client.schedule("tick", "* * * * *")
    backdate(pgflow_conn, "tick", 200)
    for minutes in range(110, 0, -1):
        assert fire(pgflow_conn, "tick", minute_ago(pgflow_conn, minutes)) is not None
    kept = pgflow_conn.execute(
        "SELECT count(*) AS n, min(scheduled_for) AS oldest FROM pgflow.schedule_occurrences"
    ).fetchone()
    assert kept == {"n": 100, "oldest": minute_ago(pgflow_conn, 100)}
    assert run_count(pgflow_conn) == 110
    # A pruned occurrence cannot be fired again: it is older than the last one fired.
    assert fire(pgflow_conn, "tick", minute_ago(pgflow_conn, 105)) is None


def test_two_schedulers_racing_for_one_occurrence(
    pgflow_conn: Conn, client: Client, pgflow_database_url: str
) -> None:
    client.schedule("tick", "* * * * *")
    backdate(pgflow_conn, "tick", 10)
    at = minute_ago(pgflow_conn)
    results: dict[str, Any] = {}
    first_fired = threading.Event()

    def scheduler(label: str, hold: float) -> None:
        with psycopg.connect(pgflow_database_url, row_factory=dict_row) as conn:
            results[label] = fire(conn, "tick", at)
            if label == "first":
                first_fired.set()
            time.sleep(hold)  # keep the transaction open: the other one must wait
            conn.commit()

    first = threading.Thread(target=scheduler, args=("first", 0.5))
    first.start()
    assert first_fired.wait(10)
    second = threading.Thread(target=scheduler, args=("second", 0))
    second.start()
    time.sleep(0.2)
    assert "second" not in results  # blocked behind the first transaction
    first.join(10)
    second.join(10)
    assert results["first"] is not None
    assert results["second"] is None
    assert run_count(pgflow_conn) == 1


def test_many_schedulers_passing_at_once_fire_each_occurrence_once(
    pgflow_conn: Conn, client: Client, pgflow_database_url: str
) -> None:
    client.schedule("tick", "* * * * *", max_catch_up=5)
    backdate(pgflow_conn, "tick", 10)
    barrier = threading.Barrier(6)
    fired: list[datetime] = []

    def scheduler() -> None:
        with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
            barrier.wait(10)
            fired.extend(at for at, _ in run(conn, fire_due("tick")).fired)

    threads = [threading.Thread(target=scheduler) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(fired) == len(set(fired)) == 5
    assert run_count(pgflow_conn) == 5
