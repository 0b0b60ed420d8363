"""`pgflow runs` and `pgflow run ID`: tables for people, JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests._helpers import run_cli


@pytest.fixture
def finished(pgflow_database_url: str) -> dict[str, Any]:
    """One completed run of a two-step flow, one failed run, one in progress (via the SQL API)."""
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("SELECT pgflow.create_flow('views', max_attempts => 1)")
        conn.execute("SELECT pgflow.add_step('views', 'first')")
        conn.execute("SELECT pgflow.add_step('views', 'second', ARRAY['first'])")
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) "
            "VALUES ('00000000-0000-0000-0000-000000000001', 'views', 'test')"
        )
        ids = [
            conn.execute(
                "SELECT run_id FROM pgflow.start_flow('views', %s)", (f'{{"n": {n}}}',)
            ).fetchone()[0]  # type: ignore[index]
            for n in range(3)
        ]

        conn.execute(
            "SELECT * FROM pgflow.start_tasks('views', ARRAY(SELECT msg_id FROM "
            "pgmq.read('views', 30, 10)), '00000000-0000-0000-0000-000000000001')"
        )
        conn.execute("SELECT pgflow.complete_task(%s, 'first', 0, '1')", (ids[0],))
        conn.execute("SELECT pgflow.fail_task(%s, 'first', 0, 'kaboom')", (ids[1],))
        conn.execute(
            "SELECT * FROM pgflow.start_tasks('views', ARRAY(SELECT msg_id FROM "
            "pgmq.read('views', 30, 10)), '00000000-0000-0000-0000-000000000001')"
        )
        conn.execute("SELECT pgflow.complete_task(%s, 'second', 0, '2')", (ids[0],))
    return {"url": pgflow_database_url, "completed": ids[0], "failed": ids[1], "open": ids[2]}


def test_runs_lists_newest_first_with_filters(finished: dict[str, Any]) -> None:
    result = run_cli("runs", "--json", "-d", finished["url"])
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert [r["run_id"] for r in page["runs"]] == [
        str(finished[k]) for k in ("open", "failed", "completed")
    ]
    assert page["next_cursor"] is None
    failed = json.loads(
        run_cli("runs", "--json", "--status", "failed", "-d", finished["url"]).stdout
    )
    assert [(r["run_id"], r["error_message"]) for r in failed["runs"]] == [
        (str(finished["failed"]), "kaboom")
    ]
    paged = json.loads(run_cli("runs", "--json", "--limit", "2", "-d", finished["url"]).stdout)
    assert len(paged["runs"]) == 2
    rest = json.loads(
        run_cli("runs", "--json", "--cursor", paged["next_cursor"], "-d", finished["url"]).stdout
    )
    assert [r["run_id"] for r in rest["runs"]] == [str(finished["completed"])]
    table = run_cli("runs", "-d", finished["url"])
    assert "kaboom" in table.stdout
    assert "completed" in table.stdout


def test_run_shows_its_steps(finished: dict[str, Any]) -> None:
    result = run_cli("run", str(finished["completed"]), "--json", "-d", finished["url"])
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["run"]["status"] == "completed"
    assert shown["run"]["output"] == {"second": 2}
    assert [
        (s["step_slug"], s["status"], s["tasks_done"], s["attempts"]) for s in shown["steps"]
    ] == [
        ("first", "completed", 1, 1),
        ("second", "completed", 1, 1),
    ]
    failed = run_cli("run", str(finished["failed"]), "-d", finished["url"])
    assert "kaboom" in failed.stdout
    assert "failed" in failed.stdout


def test_run_errors_are_one_line(finished: dict[str, Any]) -> None:
    bad = run_cli("run", "not-a-uuid", "-d", finished["url"])
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: not a run id (a UUID): 'not-a-uuid'"
    missing = run_cli("run", "00000000-0000-0000-0000-0000000000ff", "-d", finished["url"])
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error: run 00000000-0000-0000-0000-0000000000ff does not exist"
    )
    wrong = run_cli("runs", "--status", "running", "-d", finished["url"])
    assert wrong.returncode == 1
    assert "status must be one of started, completed, failed" in wrong.stderr
