"""Workers as real processes: no task runs twice, kill -9 is recovered, SIGTERM drains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgflow.dsl import load_flows
from pgflow.flows import ensure_flow

from .conftest import rows

FLOWS = """
import os, time
import psycopg
from typing import Any
from pgflow import Context, Flow

URL = os.environ.get("TEST_DB_URL", "")
SLEEP = float(os.environ.get("TEST_SLEEP", "0"))


def record(ctx: Context) -> None:
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO executions (run_id, step_slug, task_index, pid) VALUES (%s, %s, %s, %s)",
            (ctx.run_id, ctx.step_slug, ctx.task_index, os.getpid()),
        )


fanout: Flow[list[int]] = Flow("fanout", timeout=3, base_delay=1)


@fanout.map()
def work(item: int, ctx: Context) -> int:
    record(ctx)
    time.sleep(SLEEP)
    return item * 2


@fanout.step(work)
def total(run: list[int], values: list[int], ctx: Context) -> int:
    record(ctx)
    return sum(values)
"""


@pytest.fixture
def flows_module(tmp_path: Path, pgflow_database_url: str) -> Path:
    (tmp_path / "proc_flows.py").write_text(FLOWS)
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE executions (run_id uuid, step_slug text, task_index int, pid int, "
            "at timestamptz DEFAULT clock_timestamp())"
        )
        sys.path.insert(0, str(tmp_path))
        try:
            (flow,) = load_flows("proc_flows:fanout")
            ensure_flow(conn, flow)
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("proc_flows", None)
    return tmp_path


def spawn_worker(
    module_dir: Path, url: str, *extra: str, sleep: float = 0
) -> subprocess.Popen[str]:
    env = {**os.environ, "TEST_DB_URL": url, "TEST_SLEEP": str(sleep)}
    env["PYTHONPATH"] = os.pathsep.join([str(module_dir), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgflow",
            "worker",
            "proc_flows:fanout",
            "-d",
            url,
            "--poll-interval",
            "0.2",
            "--log-level",
            "debug",
            *extra,
        ],
        cwd=module_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_runs(url: str, inputs: list[Any]) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [
            conn.execute(
                "SELECT run_id FROM pgflow.start_flow('fanout', %s)", (psycopg.types.json.Jsonb(i),)
            ).fetchone()[0]  # type: ignore[index]
            for i in inputs
        ]


def wait_all(url: str, run_ids: list[Any], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = rows(
            url, "SELECT run_id, status, output FROM pgflow.runs WHERE run_id = ANY(%s)", (run_ids,)
        )
        if all(r["status"] != "started" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.mark.slow
def test_several_workers_never_run_a_task_twice(
    flows_module: Path, pgflow_database_url: str
) -> None:
    workers = [spawn_worker(flows_module, pgflow_database_url) for _ in range(3)]
    try:
        run_ids = start_runs(pgflow_database_url, [list(range(5))] * 20)
        found = wait_all(pgflow_database_url, run_ids, timeout=90)
    finally:
        outputs = [stop(w) for w in workers]
    assert [r["status"] for r in found] == ["completed"] * 20, outputs[0][-2000:]
    assert {r["output"]["total"] for r in found} == {20}
    duplicates = rows(
        pgflow_database_url,
        "SELECT run_id, step_slug, task_index, count(*) FROM executions "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )
    assert duplicates == []
    assert rows(pgflow_database_url, "SELECT count(*) AS n FROM executions") == [{"n": 20 * 6}]
    # The work was spread: more than one process ran tasks.
    assert len(rows(pgflow_database_url, "SELECT DISTINCT pid FROM executions")) > 1


@pytest.mark.slow
def test_kill_9_mid_task_is_recovered(flows_module: Path, pgflow_database_url: str) -> None:
    victim = spawn_worker(flows_module, pgflow_database_url, sleep=30)
    try:
        (run_id,) = start_runs(pgflow_database_url, [[1]])
        wait_until(
            lambda: rows(pgflow_database_url, "SELECT count(*) AS n FROM executions")[0]["n"] == 1,
            30,
        )
    finally:
        victim.kill()
        victim.communicate()
    (task,) = rows(
        pgflow_database_url,
        "SELECT status FROM pgflow.step_tasks WHERE run_id = %s AND step_slug = 'work'",
        (run_id,),
    )
    assert task["status"] == "started"  # nobody will ever report it...

    rescuer = spawn_worker(
        flows_module,
        pgflow_database_url,
        "--recovery-interval",
        "0.5",
        "--stalled-margin",
        "1",
    )
    try:
        (run,) = wait_all(pgflow_database_url, [run_id], timeout=60)
    finally:
        out = stop(rescuer)
    assert run["status"] == "completed", out[-3000:]
    assert run["output"] == {"total": 2}
    assert "stalled task requeued: work[0]" in out
    (task,) = rows(
        pgflow_database_url,
        "SELECT attempts_count, requeued_count FROM pgflow.step_tasks "
        "WHERE run_id = %s AND step_slug = 'work'",
        (run_id,),
    )
    assert task == {"attempts_count": 1, "requeued_count": 1}


@pytest.mark.slow
def test_sigterm_drains_in_flight_tasks(flows_module: Path, pgflow_database_url: str) -> None:
    worker = spawn_worker(flows_module, pgflow_database_url, sleep=2)
    (run_id,) = start_runs(pgflow_database_url, [[1, 2]])
    wait_until(
        lambda: rows(pgflow_database_url, "SELECT count(*) AS n FROM executions")[0]["n"] == 2,
        30,
    )
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, out[-3000:]
    assert "draining 2 in-flight task(s)" in out
    tasks = rows(
        pgflow_database_url,
        "SELECT status FROM pgflow.step_tasks WHERE run_id = %s AND step_slug = 'work'",
        (run_id,),
    )
    assert [t["status"] for t in tasks] == ["completed", "completed"]
    # It stopped polling: the fan-in step was queued but not taken.
    (total,) = rows(
        pgflow_database_url,
        "SELECT status FROM pgflow.step_tasks WHERE run_id = %s AND step_slug = 'total'",
        (run_id,),
    )
    assert total["status"] == "queued"
