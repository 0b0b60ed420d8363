"""``pgflow demo``: the README's first command, end to end against a real database."""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from typer.testing import CliRunner

from pgflow import Client, Flow, demo
from pgflow.cli import _demo
from pgflow.cli._app import app
from pgflow.dsl import load_flows
from pgflow.testing import running_worker
from tests._helpers import run_cli
from tests.test_readme import _readme_commands


def _expected_summary(articles: int) -> dict[str, Any]:
    """What ``summarise`` must return: the word counts are a fixed function of the id, and the
    middle article is the one retried."""
    words = [200 + n * 37 % 500 for n in range(articles)]
    return {
        "articles": articles,
        "words": sum(words),
        "longest": f"article {words.index(max(words)) + 1}",
        "retried": [f"article {articles // 2 + 1}"],
    }


def _runs(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT run_id, status, output FROM pgflow.runs WHERE flow_slug = 'pgflow_demo' "
            "ORDER BY started_at"
        ).fetchall()


def _attempts(url: str, run_id: object) -> dict[int, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT task_index, attempts_count FROM pgflow.step_tasks "
            "WHERE run_id = %s AND step_slug = 'count_words' ORDER BY task_index",
            (run_id,),
        ).fetchall()
    return dict(rows)  # type: ignore[arg-type]


def test_demo_installs_runs_retries_and_reruns(pgflow_empty_database_url: str) -> None:
    url = pgflow_empty_database_url
    first = run_cli("demo", "--database-url", url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "schema: installed pgmq" in first.stdout
    assert "flow pgflow_demo: created" in first.stdout

    [run] = _runs(url)
    assert run["status"] == "completed"
    assert run["output"] == {"summarise": _expected_summary(12)}
    # Exactly one task failed once and succeeded on its retry; every other ran once.
    assert _attempts(url, run["run_id"]) == {n: 2 if n == 6 else 1 for n in range(12)}
    assert "count_words[6] succeeded on attempt 2, after MirrorTimeoutError" in first.stdout

    # The step table, then what to try next, with the run's id and this database.
    for step in ("fetch_articles", "count_words", "summarise"):
        assert step in first.stdout
    next_steps = first.stdout.split("next\n", 1)[1]
    database = f"-d {shlex.quote(url)}"
    for command in (
        f"pgflow runs {database}",
        f"pgflow run {run['run_id']} {database}",
        f"pgflow dashboard {database}",
        "http://127.0.0.1:8765",
        f"pgflow worker pgflow.demo:flow {database}",
    ):
        assert command in next_steps
    assert "pgflow db stop" not in next_steps  # not the embedded server: nothing to stop

    again = run_cli("demo", "-d", url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "schema: pgflow schema is up to date" in again.stdout
    assert "flow pgflow_demo: verified" in again.stdout
    second = _runs(url)[1]
    assert second["status"] == "completed"
    assert second["output"] == run["output"]
    assert _attempts(url, second["run_id"])[6] == 2


def test_demo_json(pgflow_database_url: str) -> None:
    result = run_cli(
        "demo", "--items", "3", "--json", env={"PGFLOW_DATABASE_URL": pgflow_database_url}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"run", "steps", "tasks", "database", "next"}
    assert payload["run"]["status"] == "completed"
    assert payload["run"]["output"] == {"summarise": _expected_summary(3)}
    assert [s["step_slug"] for s in payload["steps"]] == [
        "fetch_articles",
        "count_words",
        "summarise",
    ]
    assert [s["tasks_total"] for s in payload["steps"]] == [1, 3, 1]
    assert [
        (t["task_index"], t["attempts"])
        for t in payload["tasks"]
        if t["step_slug"] == "count_words"
    ] == [(0, 1), (1, 2), (2, 1)]  # the middle article, retried once
    assert payload["database"] == {"source": "PGFLOW_DATABASE_URL", "url": pgflow_database_url}
    run_id = payload["run"]["run_id"]
    # Found through the environment again: the commands need no -d.
    assert payload["next"] == [
        "pgflow runs",
        f"pgflow run {run_id}",
        "pgflow dashboard",
        "pgflow worker pgflow.demo:flow",
    ]
    # The narration went to stderr, leaving stdout to the JSON.
    assert f"run {run_id} started" in result.stderr


def test_bad_item_count_is_refused_before_anything_is_done(pgflow_empty_database_url: str) -> None:
    result = run_cli("demo", "--items", "0", "-d", pgflow_empty_database_url)
    assert result.returncode == 2
    assert "--items" in result.stderr
    with psycopg.connect(pgflow_empty_database_url) as conn:
        assert conn.execute("SELECT to_regnamespace('pgflow')").fetchone() == (None,)


def test_a_failed_run_exits_1_with_the_reason(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Flow("pgflow_demo_broken", input=demo.DemoInput, max_attempts=1)

    @broken.step
    def fetch_articles(run: demo.DemoInput) -> None:
        raise ConnectionError("the feed is down")

    monkeypatch.setattr(_demo, "demo", types.SimpleNamespace(flow=broken))
    result = CliRunner().invoke(app, ["demo", "-d", pgflow_database_url])
    assert result.exit_code == 1, result.output
    assert "error: the demo run failed" in result.output
    assert "the feed is down" in result.output


def test_the_demo_flow_runs_on_a_plain_worker(pgflow_database_url: str) -> None:
    [flow] = load_flows("pgflow.demo:flow")  # what `pgflow worker pgflow.demo:flow` serves
    with running_worker([flow], pgflow_database_url), Client(pgflow_database_url) as client:
        run = client.start_flow_sync(flow, {"articles": 5}, timeout=30)
    assert run.status == "completed"
    assert run.output == {"summarise": _expected_summary(5)}


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    """A data directory of its own (not the user's, not another test's), reachable by the
    unprivileged user the server runs as under root; the server is stopped afterwards."""
    base = Path(tempfile.mkdtemp(prefix="pgflow-demo-"))
    base.chmod(0o755)
    data = base / "data"
    try:
        yield data
    finally:
        run_cli("db", "stop", env={"PGFLOW_EMBEDDED_DIR": str(data)})
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.embedded
@pytest.mark.slow
def test_readme_command_one_on_the_embedded_default(embedded_dir: Path) -> None:
    command = _readme_commands()[0]
    args = command.rsplit(".venv/bin/pgflow ", 1)[1].split()
    env = {"PGFLOW_EMBEDDED_DIR": str(embedded_dir)}  # and no database URL: run_cli drops them
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"starting the embedded PostgreSQL in {embedded_dir} (first time" in first.stdout
    assert "pgflow db stop" in first.stdout.split("next\n", 1)[1]
    # Left running, so that the next commands find the run.
    listed = run_cli("runs", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)["runs"]
    assert run["status"] == "completed"
    assert f"pgflow run {run['run_id']}" in first.stdout

    again = run_cli(*args, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"the embedded PostgreSQL in {embedded_dir}, running" in again.stdout
    assert "schema: pgflow schema is up to date" in again.stdout
