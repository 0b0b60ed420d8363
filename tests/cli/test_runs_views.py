"""`pgflow runs` and `pgflow run ID`: tables for people, JSON for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from rich.console import Console

from pgflow import Flow
from pgflow.cli._runs import render_run, timeline_bar
from pgflow.client import Client
from pgflow.testing._worker import running_worker
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


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


T0 = datetime(2026, 1, 1, tzinfo=UTC)
AXIS = (T0, at(10))


@pytest.mark.parametrize(
    ("start", "end", "bar"),
    [
        (0, 5, "█████"),
        (5, 10, "     █████"),
        (2, 2.05, "  █"),  # too short to see: still one block where it happened
        (10, 10, "         █"),  # at the very end: the last column
        (4, None, "    ██████"),  # still running: up to the end of the axis (now)
        (None, None, ""),  # never started
        (-1, 20, "██████████"),  # outside the axis (clock skew): clipped
    ],
)
def test_timeline_bar_places_steps_on_the_run_axis(
    start: float | None, end: float | None, bar: str
) -> None:
    begin = at(start) if start is not None else None
    finish = at(end) if end is not None else None
    assert timeline_bar(begin, finish, AXIS, width=10) == bar


def test_timeline_bar_of_an_instant_run() -> None:
    assert timeline_bar(T0, T0, (T0, T0), width=10) == "█"


@pytest.fixture
def retried(pgflow_database_url: str) -> dict[str, Any]:
    """A run whose only step failed once, then completed on its second attempt."""
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("SELECT pgflow.create_flow('flaky', max_attempts => 2, base_delay => 0)")
        conn.execute("SELECT pgflow.add_step('flaky', 'only')")
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) "
            "VALUES ('00000000-0000-0000-0000-000000000002', 'flaky', 'test')"
        )
        row = conn.execute("SELECT run_id FROM pgflow.start_flow('flaky', '{}')").fetchone()
        assert row is not None
        claim = (
            "SELECT * FROM pgflow.start_tasks('flaky', ARRAY(SELECT msg_id FROM "
            "pgmq.read('flaky', 30, 10)), '00000000-0000-0000-0000-000000000002')"
        )
        conn.execute(claim)
        conn.execute("SELECT pgflow.fail_task(%s, 'only', 0, 'flaked')", (row[0],))
        conn.execute(claim)
        conn.execute("SELECT pgflow.complete_task(%s, 'only', 0, '1')", (row[0],))
    return {"url": pgflow_database_url, "run_id": row[0]}


def test_run_timeline_shows_retries_and_failures(
    finished: dict[str, Any], retried: dict[str, Any]
) -> None:
    result = run_cli("run", str(retried["run_id"]), "-d", retried["url"])
    assert result.returncode == 0, result.stderr
    assert "timeline 0-" in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("│ only")]
    assert "█ ↻2" in row
    shown = json.loads(
        run_cli("run", str(retried["run_id"]), "--json", "-d", retried["url"]).stdout
    )
    (step,) = shown["steps"]
    assert step["attempts"] == 2
    assert step["started_at"] <= step["completed_at"]
    assert step["failed_at"] is None
    with Client(finished["url"], listen=False) as client:
        failed = client.get_run_with_states(finished["failed"])
    out = Console(record=True, width=200, force_terminal=True, color_system="standard")
    out.print(render_run(failed))
    assert "\x1b[31m█" in out.export_text(styles=True)  # the failed step's bar is red


@pytest.fixture
def many_tasks(pgflow_database_url: str) -> dict[str, Any]:
    """A completed run of a map over 12 items, worked by a real worker."""
    flow: Flow[list[int]] = Flow("wide")

    @flow.map()
    def double(item: int) -> int:
        return item * 2

    with running_worker([flow], pgflow_database_url), Client(pgflow_database_url) as client:
        run = client.start_flow_sync(flow, list(range(12)), timeout=60)
    assert run.status == "completed"
    return {"url": pgflow_database_url, "run_id": run.run_id}


def test_run_tasks_summarises_a_map(many_tasks: dict[str, Any]) -> None:
    result = run_cli("run", str(many_tasks["run_id"]), "--tasks", "-d", many_tasks["url"])
    assert result.returncode == 0, result.stderr
    task_rows = [line for line in result.stdout.splitlines() if line.startswith("│ double")]
    step_row, summary = task_rows  # one row in the step table, one summary in the task table
    assert "12/12" in step_row
    assert "│ 0-11 │ 12 completed │" in summary
    assert "1 worker(s)" in summary
    shown = json.loads(
        run_cli(
            "run", str(many_tasks["run_id"]), "--tasks", "--json", "-d", many_tasks["url"]
        ).stdout
    )
    assert [t["task_index"] for t in shown["tasks"]] == list(range(12))
    assert set(shown["tasks"][0]) == {
        "step_slug",
        "task_index",
        "status",
        "attempts",
        "queued_at",
        "started_at",
        "completed_at",
        "failed_at",
        "error_message",
        "worker_id",
    }
    assert "tasks" not in json.loads(
        run_cli("run", str(many_tasks["run_id"]), "--json", "-d", many_tasks["url"]).stdout
    )


def test_run_tasks_lists_few_tasks_one_by_one(finished: dict[str, Any]) -> None:
    result = run_cli("run", str(finished["failed"]), "--tasks", "-d", finished["url"])
    assert result.returncode == 0, result.stderr
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    step, task, status, attempts, _, worker, error = next(
        r for r in rows if r[:2] == ["first", "0"]
    )
    assert (step, task, status, attempts, error) == ("first", "0", "failed", "1", "kaboom")
    assert worker == "00000000"  # the worker that ran it (short id)
