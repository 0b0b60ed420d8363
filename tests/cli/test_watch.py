"""`pgflow watch ID`: following real runs driven by a real worker, to the end."""

from __future__ import annotations

import io
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from rich.console import Console

from pgflow import Flow
from pgflow.cli._watch import (
    afollow_run,
    follow_run,
    progress_changes,
    render_progress,
    run_finished,
    watch_run,
)
from pgflow.client import AsyncClient, Client, Run, RunWithStates, StepState, TaskState
from pgflow.errors import WaitTimeoutError
from pgflow.events import AsyncEventHub, EventHub
from pgflow.testing._worker import running_worker
from pgflow.worker import Worker
from tests._helpers import run_cli

FAST = {"poll_interval": 0.2, "heartbeat_interval": 0.3}
ITEMS = 6


def slow_map_flow(*, fail: bool = False) -> Flow[Any]:
    """A single step, a map whose tasks take a while (one at a time), a fan-in."""
    flow: Flow[Any] = Flow("watched", max_attempts=1, timeout=30)

    @flow.step
    def items(run: Any) -> list[int]:
        return list(range(run["n"]))

    @flow.map(items)
    def work(item: int) -> int:
        time.sleep(0.4)
        if fail and item == 2:
            raise RuntimeError("item 2 is cursed")
        return item * 10

    @flow.step(items, work)
    def total(run: Any, listed: list[int], done: list[int]) -> int:
        return sum(done)

    return flow


def start(url: str, flow: Flow[Any], n: int = ITEMS) -> uuid.UUID:
    with Client(url, listen=False) as client:
        client.ensure_flow(flow)
        return client.start_flow(flow, {"n": n}).run_id


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def wait_until_listening(url: str) -> None:
    """Until a session of this database is LISTENing (the watch subscribed before its first
    read, so from then on it sees every change)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            listening = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = 'LISTEN pgflow_events'"
            ).fetchone()
            if listening and listening[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the watch never started listening")


def test_watch_json_follows_a_run_to_completion(pgflow_database_url: str) -> None:
    flow = slow_map_flow()
    run_id = start(pgflow_database_url, flow)
    with ThreadPoolExecutor(1) as background:
        watching = background.submit(
            run_cli, "watch", str(run_id), "--json", "-d", pgflow_database_url
        )
        wait_until_listening(pgflow_database_url)  # only then may the run move
        with running_worker([flow], pgflow_database_url, max_concurrent=1, **FAST):
            result = watching.result(timeout=120)
    assert result.returncode == 0, result.stderr
    *changes, final = json_lines(result.stdout)
    assert all(c["run_id"] == str(run_id) and c["at"] for c in changes)
    assert [c["event"] for c in changes].count("run") == 2  # started, then completed
    assert changes[-1] == {**changes[-1], "event": "run", "status": "completed"}
    work_done = [c["tasks_done"] for c in changes if c.get("step_slug") == "work"]
    assert work_done == sorted(work_done)
    assert work_done[-1] == ITEMS
    assert any(0 < done < ITEMS for done in work_done), "no progress seen between 0 and all"
    shown = json.loads(run_cli("run", str(run_id), "--json", "-d", pgflow_database_url).stdout)
    assert final == shown
    assert final["run"]["output"] == {"total": sum(i * 10 for i in range(ITEMS))}


def test_watch_prints_the_step_table_at_the_end(pgflow_database_url: str) -> None:
    flow = slow_map_flow()
    run_id = start(pgflow_database_url, flow, n=2)
    with running_worker([flow], pgflow_database_url, **FAST):
        result = run_cli("watch", str(run_id), "-d", pgflow_database_url)
    assert result.returncode == 0, result.stderr
    header, *table = result.stdout.splitlines()
    assert header.startswith(f"watched {run_id}  completed")
    rows = [line for line in table if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["items", "work", "total"]
    assert all("completed" in row and "█" in row for row in rows)


def test_watch_exits_1_when_the_run_fails(pgflow_database_url: str) -> None:
    flow = slow_map_flow(fail=True)
    run_id = start(pgflow_database_url, flow, n=3)
    with running_worker([flow], pgflow_database_url, **FAST):
        result = run_cli("watch", str(run_id), "--json", "-d", pgflow_database_url)
    assert result.returncode == 1, result.stderr
    *changes, final = json_lines(result.stdout)
    assert changes[-1]["event"] == "run"
    assert changes[-1]["status"] == "failed"
    assert final["run"]["status"] == "failed"
    assert "item 2 is cursed" in final["run"]["error_message"]
    human = run_cli("watch", str(run_id), "-d", pgflow_database_url)
    assert human.returncode == 1
    assert "item 2 is cursed" in human.stdout


def test_watch_gives_up_after_its_timeout(pgflow_database_url: str) -> None:
    run_id = start(pgflow_database_url, slow_map_flow())  # no worker: it never moves
    began = time.monotonic()
    result = run_cli("watch", str(run_id), "--json", "--timeout", "1.5", "-d", pgflow_database_url)
    assert result.returncode == 124
    assert result.stderr.strip() == f"error: run {run_id} is still started after 1.5s"
    assert time.monotonic() - began < 15
    assert [c["event"] for c in json_lines(result.stdout)] == ["step", "step", "step", "run"]
    human = run_cli("watch", str(run_id), "--timeout", "0.5", "-d", pgflow_database_url)
    assert human.returncode == 124
    assert human.stdout.startswith(f"watched {run_id}  started")  # where the run got to
    assert "error: run" in human.stderr


def test_watch_ends_on_a_status_it_does_not_know(pgflow_database_url: str) -> None:
    """Newer cores add terminal statuses (cancelled): the watch ends, with exit code 1."""
    run_id = start(pgflow_database_url, slow_map_flow())
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        # This core's constraints know only started/completed/failed: lift them for the test.
        checks = conn.execute(
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'pgflow.runs'::regclass AND contype = 'c'"
        ).fetchall()
        for (name,) in checks:
            conn.execute(
                psycopg.sql.SQL("ALTER TABLE pgflow.runs DROP CONSTRAINT {}").format(
                    psycopg.sql.Identifier(name)
                )
            )
        conn.execute("UPDATE pgflow.runs SET status = 'cancelled' WHERE run_id = %s", (run_id,))
    result = run_cli("watch", str(run_id), "--timeout", "30", "-d", pgflow_database_url)
    assert result.returncode == 1, result.stderr
    assert f"watched {run_id}  cancelled" in result.stdout
    assert run_cli("run", str(run_id), "-d", pgflow_database_url).returncode == 0


def test_watch_refuses_bad_and_unknown_ids(pgflow_database_url: str) -> None:
    bad = run_cli("watch", "nope", "-d", pgflow_database_url)
    assert (bad.returncode, bad.stderr.strip()) == (1, "error: not a run id (a UUID): 'nope'")
    unknown = str(uuid.UUID(int=7))
    missing = run_cli("watch", unknown, "--json", "-d", pgflow_database_url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: run {unknown} does not exist"
    assert missing.stdout == ""


def test_follow_run_is_woken_by_events_without_polling(pgflow_database_url: str) -> None:
    flow = slow_map_flow()
    run_id = start(pgflow_database_url, flow, n=1)
    hub = EventHub(pgflow_database_url)
    try:
        with Client(pgflow_database_url, listen=False) as client:
            # A poll interval far beyond the test's patience: only events can move it on.
            states = follow_run(client, run_id, events=hub, poll_interval=600)
            assert next(states).run.status == "started"  # subscribed; nobody works on it yet
            with running_worker([flow], pgflow_database_url, **FAST):
                began = time.monotonic()
                rest = list(states)
                took = time.monotonic() - began
    finally:
        hub.close()
    assert took < 60  # far below the poll interval
    assert [s.run.status for s in rest] == ["started"] * (len(rest) - 1) + ["completed"]


def test_follow_run_polls_when_there_are_no_events(pgflow_database_url: str) -> None:
    flow = slow_map_flow()
    run_id = start(pgflow_database_url, flow, n=1)
    with Client(pgflow_database_url, listen=False) as client:
        states = follow_run(client, run_id, poll_interval=0.1, timeout=60)
        assert next(states).run.status == "started"
        with running_worker([flow], pgflow_database_url, **FAST):
            assert list(states)[-1].run.status == "completed"


def test_watch_run_returns_the_final_state(pgflow_database_url: str) -> None:
    flow = slow_map_flow()
    run_id = start(pgflow_database_url, flow, n=1)
    screen = io.StringIO()
    with (
        Client(pgflow_database_url, listen=False) as client,
        running_worker([flow], pgflow_database_url, **FAST),
    ):
        final = watch_run(client, run_id, Console(file=screen), timeout=60)
    assert final.run.status == "completed"
    assert final.run.output == {"total": 0}
    assert screen.getvalue() == ""  # the live view is gone: callers print what they want


def test_follow_run_times_out(pgflow_database_url: str) -> None:
    run_id = start(pgflow_database_url, slow_map_flow())
    with Client(pgflow_database_url, listen=False) as client:
        states = follow_run(client, run_id, timeout=0.5, poll_interval=0.1)
        assert next(states).run.status == "started"
        with pytest.raises(WaitTimeoutError, match=r"is still started after 0\.5s"):
            next(states)


async def test_afollow_run_follows_a_run_with_the_async_client(pgflow_database_url: str) -> None:
    flow = slow_map_flow()
    run_id = start(pgflow_database_url, flow, n=3)
    hub = AsyncEventHub(pgflow_database_url)
    try:
        async with (
            AsyncClient(pgflow_database_url, listen=False) as client,
            Worker([flow], database_url=pgflow_database_url, **FAST),
        ):
            states = [s async for s in afollow_run(client, run_id, events=hub, timeout=30)]
    finally:
        await hub.close()
    assert [s.run.status for s in states][-2:] == ["started", "completed"]
    assert states[-1].run.output == {"total": 30}


# -- pure pieces ------------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def snapshot(run_status: str, work: list[str], work_status: str = "started") -> RunWithStates:
    """A run of `watched` whose map step `work` has tasks in the given statuses."""
    run_id = uuid.UUID(int=1)
    run = Run(
        run_id=run_id,
        flow_slug="watched",
        status=run_status,
        input={},
        output=None,
        remaining_steps=1,
        started_at=T0,
        completed_at=None,
        failed_at=None,
    )
    steps = (
        StepState("items", "single", 0, "completed", 0, 0, 1, None, T0, T0, T0, None),
        StepState("work", "map", 1, work_status, 0, 0, len(work), None, T0, T0, None, None),
    )
    tasks = (
        TaskState("items", 0, "completed", 1, 0, None, [], T0, T0, T0, None, None),
        *(
            TaskState("work", i, status, 1, i, None, None, T0, T0, None, None, None)
            for i, status in enumerate(work)
        ),
    )
    return RunWithStates(run, steps, tasks)


def test_progress_changes_report_only_what_changed() -> None:
    first = snapshot("started", ["started", "queued", "queued"])
    assert [(c["event"], c.get("step_slug")) for c in progress_changes(None, first)] == [
        ("step", "items"),
        ("step", "work"),
        ("run", None),
    ]
    assert progress_changes(first, first) == []
    later = snapshot("started", ["completed", "completed", "started"])
    assert progress_changes(first, later) == [
        {
            "event": "step",
            "run_id": str(uuid.UUID(int=1)),
            "step_slug": "work",
            "step_type": "map",
            "status": "started",
            "tasks_done": 2,
            "tasks_total": 3,
            "attempts": 1,
        }
    ]
    ended = snapshot("completed", ["completed"] * 3, "completed")
    assert [c["event"] for c in progress_changes(later, ended)] == ["step", "run"]


def test_render_progress_draws_a_bar_for_map_steps() -> None:
    out = Console(record=True, width=100, color_system=None)
    out.print(render_progress(snapshot("started", ["completed", "completed", "started", "x"])))
    text = out.export_text()
    assert text.startswith(f"watched {uuid.UUID(int=1)}  started  1 step(s) to go")
    items_line, work_line = text.splitlines()[1:3]
    assert items_line.split() == ["items", "completed", "1/1"]  # a single step: no bar
    assert work_line.split()[:2] == ["work", "started"]
    assert work_line.split()[-1] == "2/4"
    assert "━" in work_line


@pytest.mark.parametrize(
    ("status", "finished"),
    [("started", False), ("completed", True), ("failed", True), ("cancelled", True)],
)
def test_run_finished_takes_any_status_but_started_as_the_end(status: str, finished: bool) -> None:
    assert run_finished(snapshot(status, []).run) is finished
