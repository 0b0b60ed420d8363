"""The Prometheus exporter: exact figures on known rows, outages, the CLI and the ASGI app."""

from __future__ import annotations

import asyncio
import math
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from pgflow.client._models import RUN_STATUSES
from pgflow.monitor import PgflowCollector, make_asgi_app, register
from pgflow.testing import TestDatabaseServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(collector: PgflowCollector) -> Samples:
    registry = CollectorRegistry()
    registry.register(collector)
    return samples_of(generate_latest(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def make_flows(conn: psycopg.Connection[DictRow]) -> None:
    conn.execute("SELECT pgflow.create_flow('alpha')")
    conn.execute("SELECT pgflow.add_step('alpha', 'a')")
    conn.execute("SELECT pgflow.add_step('alpha', 'b', ARRAY['a'])")
    conn.execute("SELECT pgflow.create_flow('beta')")
    conn.execute("SELECT pgflow.add_step('beta', 'only')")


def add_run(
    conn: psycopg.Connection[DictRow],
    flow: str,
    status: str,
    started_at: datetime,
    seconds: float | None = None,
    steps: dict[str, tuple[str, float | None]] | None = None,
) -> None:
    """A run as the core leaves it, with the step states given as {step: (status, seconds)}."""
    finished = None if seconds is None else started_at + timedelta(seconds=seconds)
    run_id = conn.execute(
        "INSERT INTO pgflow.runs (flow_slug, status, input, started_at, completed_at, failed_at)"
        " VALUES (%s, %s, '{}', %s, %s, %s) RETURNING run_id",
        (
            flow,
            status,
            started_at,
            finished if status == "completed" else None,
            finished if status == "failed" else None,
        ),
    ).fetchone()["run_id"]  # type: ignore[index]
    for step, (step_status, step_seconds) in (steps or {}).items():
        end = None if step_seconds is None else started_at + timedelta(seconds=step_seconds)
        conn.execute(
            "INSERT INTO pgflow.step_states (flow_slug, run_id, step_slug, status, created_at,"
            " started_at, completed_at, failed_at, remaining_tasks, initial_tasks)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1)",
            (
                flow,
                run_id,
                step,
                step_status,
                started_at,
                None if step_status == "created" else started_at,
                end if step_status == "completed" else None,
                end if step_status == "failed" else None,
                None if step_status == "created" else 0 if step_status == "completed" else 1,
            ),
        )


def test_exact_figures_on_known_rows(
    pgflow_conn: psycopg.Connection[DictRow], pgflow_database_url: str
) -> None:
    make_flows(pgflow_conn)
    now = pgflow_conn.execute("SELECT now() AS now").fetchone()["now"]  # type: ignore[index]
    recent = now - timedelta(minutes=5)
    for seconds in (0.05, 2, 5, 7):  # 5 s sits exactly on a bucket bound: le="5.0" holds it
        add_run(pgflow_conn, "alpha", "completed", recent, seconds, {"a": ("completed", seconds)})
    add_run(
        pgflow_conn, "alpha", "failed", recent, 20, {"a": ("failed", 20), "b": ("created", None)}
    )
    add_run(pgflow_conn, "alpha", "started", recent, None, {"a": ("started", None)})
    # Outside the one-hour window: not counted, except as in progress.
    long_ago = now - timedelta(hours=2)
    add_run(pgflow_conn, "alpha", "completed", long_ago, 1, {"a": ("completed", 1)})
    add_run(pgflow_conn, "alpha", "started", long_ago, None, {"a": ("started", None)})

    pgflow_conn.execute("SELECT pgmq.send('alpha', '{}')")
    pgflow_conn.execute("SELECT pgmq.send('alpha', '{}')")
    pgflow_conn.execute("SELECT pgmq.send('alpha', '{}', 60)")  # not visible for a minute
    pgflow_conn.execute(
        "UPDATE pgmq.q_alpha SET enqueued_at = now() - interval '100 seconds'"
        " WHERE msg_id = (SELECT min(msg_id) FROM pgmq.q_alpha)"
    )
    pgflow_conn.execute(
        "INSERT INTO pgflow.workers (worker_id, queue_name, function_name, last_heartbeat_at,"
        " deprecated_at) VALUES"
        " (gen_random_uuid(), 'alpha', 'w', now(), NULL),"
        " (gen_random_uuid(), 'alpha', 'w', now() - interval '10 seconds', NULL),"
        " (gen_random_uuid(), 'alpha', 'w', now(), now()),"
        " (gen_random_uuid(), 'beta', 'w', now() - interval '1 hour', NULL)"
    )

    samples = scrape(PgflowCollector(pgflow_database_url))

    assert value(samples, "pgflow_up") == 1
    assert 0 < value(samples, "pgflow_scrape_duration_seconds") < 5
    runs = {
        (dict(labels)["flow"], dict(labels)["status"]): v
        for (name, labels), v in samples.items()
        if name == "pgflow_runs"
    }
    zeros = {(flow, status): 0 for flow in ("alpha", "beta") for status in RUN_STATUSES}
    assert runs == {
        **zeros,
        ("alpha", "started"): 1,
        ("alpha", "completed"): 4,
        ("alpha", "failed"): 1,
    }
    assert value(samples, "pgflow_runs_in_progress", flow="alpha") == 2
    assert value(samples, "pgflow_runs_in_progress", flow="beta") == 0
    assert value(samples, "pgflow_step_states", flow="alpha", step="a", status="completed") == 4
    assert value(samples, "pgflow_step_states", flow="alpha", step="a", status="failed") == 1
    assert value(samples, "pgflow_step_states", flow="alpha", step="a", status="started") == 1
    assert value(samples, "pgflow_step_states", flow="alpha", step="b", status="created") == 1
    assert value(samples, "pgflow_step_states", flow="beta", step="only", status="created") == 0

    def buckets(name: str, **labels: str) -> dict[str, float]:
        return {
            dict(ls)["le"]: v
            for (n, ls), v in samples.items()
            if n == f"{name}_bucket" and {k: dict(ls)[k] for k in labels} == labels
        }

    completed = buckets("pgflow_run_duration_seconds", flow="alpha", status="completed")
    assert completed == {
        "0.1": 1,
        "0.5": 1,
        "1.0": 1,
        "2.5": 2,
        "5.0": 3,
        "10.0": 4,
        "30.0": 4,
        "60.0": 4,
        "300.0": 4,
        "900.0": 4,
        "3600.0": 4,
        "+Inf": 4,
    }
    alpha_completed = {"flow": "alpha", "status": "completed"}
    assert value(samples, "pgflow_run_duration_seconds_count", **alpha_completed) == 4
    assert value(samples, "pgflow_run_duration_seconds_sum", **alpha_completed) == pytest.approx(
        14.05
    )
    failed = buckets("pgflow_run_duration_seconds", flow="alpha", status="failed")
    assert (failed["10.0"], failed["30.0"], failed["+Inf"]) == (0, 1, 1)
    assert buckets("pgflow_run_duration_seconds", flow="beta", status="completed")["+Inf"] == 0

    step_a = buckets("pgflow_step_duration_seconds", flow="alpha", step="a", status="completed")
    assert (step_a["0.1"], step_a["2.5"], step_a["5.0"], step_a["+Inf"]) == (1, 2, 3, 4)
    step_a_failed = {"flow": "alpha", "step": "a", "status": "failed"}
    assert value(samples, "pgflow_step_duration_seconds_sum", **step_a_failed) == 20
    assert value(samples, "pgflow_step_duration_seconds_count", flow="alpha", step="b",
                 status="completed") == 0  # fmt: skip

    assert value(samples, "pgflow_queue_messages", flow="alpha") == 3
    assert value(samples, "pgflow_queue_visible_messages", flow="alpha") == 2
    assert 100 <= value(samples, "pgflow_queue_oldest_message_age_seconds", flow="alpha") < 110
    assert value(samples, "pgflow_queue_messages", flow="beta") == 0
    assert value(samples, "pgflow_queue_oldest_message_age_seconds", flow="beta") == 0

    assert value(samples, "pgflow_workers", flow="alpha", state="live") == 2
    assert value(samples, "pgflow_workers", flow="alpha", state="deprecated") == 1
    assert value(samples, "pgflow_workers", flow="beta", state="live") == 0  # no heartbeat


def test_window_and_buckets_are_options(
    pgflow_conn: psycopg.Connection[DictRow], pgflow_database_url: str
) -> None:
    make_flows(pgflow_conn)
    now = pgflow_conn.execute("SELECT now() AS now").fetchone()["now"]  # type: ignore[index]
    add_run(pgflow_conn, "beta", "completed", now - timedelta(minutes=30), 3)
    add_run(pgflow_conn, "beta", "completed", now - timedelta(minutes=5), 4)
    samples = scrape(PgflowCollector(pgflow_database_url, window=600, buckets=(3.5,)))
    labels = {"flow": "beta", "status": "completed"}
    assert value(samples, "pgflow_run_duration_seconds_bucket", le="3.5", **labels) == 0
    assert value(samples, "pgflow_run_duration_seconds_bucket", le="+Inf", **labels) == 1
    assert value(samples, "pgflow_run_duration_seconds_sum", **labels) == 4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 0}, "window"),
        ({"buckets": (5, 1)}, "buckets"),
        ({"buckets": ()}, "buckets"),
        ({"buckets": (1, math.inf)}, "buckets"),
        ({"timeout": -1}, "timeout"),
    ],
)
def test_bad_options_are_refused(
    pgflow_database_url: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PgflowCollector(pgflow_database_url, **options)


def terminate_others(admin: psycopg.Connection[Any], database: str) -> None:
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,),
    )


def test_a_database_outage_gives_up_0_and_a_recovery_up_1(
    pgflow_test_server: TestDatabaseServer, pgflow_database_url: str
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = scrape(PgflowCollector(f"postgresql://postgres@127.0.0.1:{port}/x", timeout=2))
    assert unreachable.keys() == {
        ("pgflow_up", frozenset()),
        ("pgflow_scrape_duration_seconds", frozenset()),
    }
    assert value(unreachable, "pgflow_up") == 0

    collector = PgflowCollector(pgflow_database_url, timeout=2)
    registry = CollectorRegistry()
    registry.register(collector)

    def up() -> float:
        return value(samples_of(generate_latest(registry).decode()), "pgflow_up")

    database = psycopg.conninfo.conninfo_to_dict(pgflow_database_url)["dbname"]
    assert isinstance(database, str)
    alter = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}")
    with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as admin:
        assert up() == 1
        # The server ends the exporter's connection (a restart): the next scrape reconnects.
        terminate_others(admin, database)
        assert up() == 1
        # Then the database refuses every connection for a while.
        admin.execute(alter.format(sql.Identifier(database), sql.SQL("false")))
        try:
            terminate_others(admin, database)
            assert up() == 0
        finally:
            admin.execute(alter.format(sql.Identifier(database), sql.SQL("true")))
        assert up() == 1
    collector.close()


def test_a_database_without_the_schema_gives_up_0(pgflow_empty_database_url: str) -> None:
    assert value(scrape(PgflowCollector(pgflow_empty_database_url)), "pgflow_up") == 0


def test_a_pool_and_the_asgi_app(pgflow_database_url: str) -> None:
    with ConnectionPool(pgflow_database_url, min_size=1, max_size=1, open=True) as pool:
        assert value(scrape(PgflowCollector(pool=pool)), "pgflow_up") == 1
    with pytest.raises(ValueError, match="not both"):
        PgflowCollector(pgflow_database_url, pool=pool)

    registry = CollectorRegistry()
    register(registry, pgflow_database_url)
    assert value(samples_of(generate_latest(registry).decode()), "pgflow_up") == 1

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_asgi_app(pgflow_database_url))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/")

    response = asyncio.run(fetch())
    assert response.status_code == 200
    assert value(samples_of(response.text), "pgflow_up") == 1


def test_pgflow_metrics_serve_answers_over_http(pgflow_database_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pgflow", "metrics", "serve", "-d", pgflow_database_url,
         "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, line
        response = httpx.get(f"http://127.0.0.1:{match.group(1)}/metrics", timeout=30)
        assert response.status_code == 200
        samples = samples_of(response.text)
        assert value(samples, "pgflow_up") == 1
        process.terminate()  # SIGTERM: a clean exit
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_pgflow_metrics_serve_on_a_busy_port_fails_in_one_line(pgflow_database_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pgflow", "metrics", "serve", "-d", pgflow_database_url,
             "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
