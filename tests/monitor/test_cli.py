"""`pgflow workers`, `pgflow stats` and `pgflow prune`: JSON shapes, rich tables, one-line
errors, and prune's confirmation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from pgflow.cli._app import app
from tests._helpers import run_cli
from tests.monitor._data import BASE, MadeRun, create_flows, insert_runs, known_history

SINCE = BASE.isoformat()
UNTIL = (BASE + timedelta(hours=6)).isoformat()


@pytest.fixture
def url(pgflow_database_url: str) -> str:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        insert_runs(conn, known_history())
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name, "
            "last_heartbeat_at) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'alpha', 'live_one', now()), "
            "('00000000-0000-0000-0000-000000000002', 'beta', 'gone_one', "
            " now() - interval '1 hour')"
        )
        conn.execute("SELECT pgmq.send('alpha', '{}')")
    return pgflow_database_url


def test_workers(url: str) -> None:
    shown = run_cli("workers", "--json", "-d", url)
    assert shown.returncode == 0, shown.stderr
    live = json.loads(shown.stdout)
    assert [(w["function_name"], w["flow_slug"], w["status"]) for w in live] == [
        ("live_one", "alpha", "alive")
    ]
    assert set(live[0]) == {
        "worker_id",
        "flow_slug",
        "function_name",
        "started_at",
        "last_heartbeat_at",
        "deprecated_at",
        "stopped_at",
        "heartbeat_age",
        "status",
    }
    everyone = json.loads(run_cli("workers", "--all", "--json", "-d", url).stdout)
    assert [w["status"] for w in everyone] == ["alive", "silent"]
    table = run_cli("workers", "--all", "-d", url)
    assert table.returncode == 0, table.stderr
    assert "live_one" in table.stdout
    assert "gone_one" in table.stdout
    assert "silent" in table.stdout


def test_stats_json(url: str) -> None:
    shown = run_cli("stats", "--json", "--since", SINCE, "--until", UNTIL, "--top", "1", "-d", url)
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)
    assert (metrics["total_runs"], metrics["completed"], metrics["failed"]) == (18, 12, 4)
    assert metrics["success_rate"] == 0.75
    assert metrics["run_duration"]["max"] == 10.0
    assert metrics["failure_reasons"] == [{"error": "boom", "count": 3}]
    assert len(metrics["busy_hours"]) == len(metrics["slowest_steps"]) == 1
    assert metrics["live_workers"] == {"alpha": 1, "beta": 0}
    assert [(q["flow_slug"], q["depth"]) for q in metrics["queues"]] == [("alpha", 1), ("beta", 0)]
    beta = json.loads(
        run_cli(
            "stats", "--json", "--since", SINCE, "--until", UNTIL, "--flow", "beta", "-d", url
        ).stdout
    )
    assert (beta["flow"], beta["total_runs"], beta["failed"]) == ("beta", 3, 1)


def test_stats_table(url: str) -> None:
    shown = run_cli("stats", "--since", SINCE, "--until", UNTIL, "-d", url)
    assert shown.returncode == 0, shown.stderr
    for text in (
        "18 started: 12 completed, 4 failed, 2 running",
        "75.0%",
        "max 10.0 s",
        "slowest steps",
        "failure reasons",
        "boom",
        "busiest hours",
        "2026-03-01 11:00",
        "queues",
    ):
        assert text in shown.stdout, text


def test_stats_of_an_empty_window(url: str) -> None:
    shown = run_cli("stats", "--since", "2020-01-01", "--until", "2020-01-02", "-d", url)
    assert shown.returncode == 0, shown.stderr
    assert "0 started: 0 completed, 0 failed, 0 running" in shown.stdout
    assert "failure reasons" not in shown.stdout


def test_stats_errors_are_one_line(url: str) -> None:
    bad = run_cli("stats", "--since", "yesterday", "-d", url)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --since must be an ISO 8601 time, got 'yesterday'"
    missing = run_cli("stats", "--flow", "nope", "-d", url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: flow 'nope' does not exist"
    backwards = run_cli("stats", "--since", UNTIL, "--until", SINCE, "-d", url)
    assert backwards.returncode == 1
    assert "must be before until" in backwards.stderr


def test_prune_asks_first(pgflow_database_url: str) -> None:
    now = datetime.now(UTC)
    old = MadeRun("alpha", "completed", now - timedelta(days=3), 1.0)
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        create_flows(conn)
        insert_runs(conn, [old, MadeRun("alpha", "completed", now, 1.0)])

    def runs_left() -> int:
        with psycopg.connect(pgflow_database_url) as conn:
            return conn.execute("SELECT count(*) FROM pgflow.runs").fetchone()[0]  # type: ignore[index]

    runner = CliRunner()
    args = ["prune", "--older-than", "1", "-d", pgflow_database_url]
    declined = runner.invoke(app, args, input="n\n")
    assert declined.exit_code == 1
    assert "not confirmed: nothing was deleted" in declined.output
    no_answer = run_cli(*args)  # stdin closed: no
    assert no_answer.returncode == 1
    assert no_answer.stderr.strip().endswith("error: not confirmed: nothing was deleted")
    assert runs_left() == 2
    accepted = runner.invoke(app, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "deleted 1 run(s), 2 step state(s)" in accepted.output
    assert runs_left() == 1


def test_prune_yes_json(url: str) -> None:
    shown = run_cli("prune", "--older-than", "0", "--yes", "--json", "-d", url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "runs": 16,
        "step_states": 29,  # 13 alpha runs of two steps, 3 beta runs of one
        "step_tasks": 0,
        "workers": 2,
        "archived_messages": 0,
    }


def test_prune_refuses_a_negative_age(url: str) -> None:
    bad = run_cli("prune", "--older-than", "-1", "--yes", "-d", url)
    assert bad.returncode == 1
    assert (
        bad.stderr.strip() == "error: --older-than must be a non-negative number of days, got -1.0"
    )
