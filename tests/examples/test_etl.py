"""examples/etl: an array step, a map step per line, a transactional fan-in that loads rows."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from examples.etl.__main__ import main
from examples.etl.flow import import_people

from pgflow import Client
from pgflow.testing import running_worker


@pytest.fixture
def client(pgflow_database_url: str) -> Any:
    with Client(pgflow_database_url) as c, running_worker([import_people], pgflow_database_url):
        yield c


def test_lines_are_parsed_one_task_each_and_loaded_once(
    client: Client, pgflow_conn: psycopg.Connection[Any]
) -> None:
    lines = ["ada, 36", "", "grace,85", "  ", "alan ,41"]
    run = client.start_flow_sync(import_people, {"lines": lines}, timeout=60)
    assert run.status == "completed"
    assert run.output == {"load": {"loaded": 3, "skipped_lines": 2, "oldest": "Grace"}}
    assert client.get_step_output(run.run_id, "transform") == [
        {"name": "Ada", "age": 36},
        {"name": "Grace", "age": 85},
        {"name": "Alan", "age": 41},
    ]
    state = client.get_run_with_states(run.run_id)
    assert len(state.tasks_of("transform")) == 3
    loaded = pgflow_conn.execute(
        "SELECT name, age FROM people WHERE run_id = %s ORDER BY line_number", (run.run_id,)
    ).fetchall()
    assert loaded == [
        {"name": "Ada", "age": 36},
        {"name": "Grace", "age": 85},
        {"name": "Alan", "age": 41},
    ]


def test_a_bad_line_fails_the_run_after_its_retries_and_loads_nothing(
    client: Client, pgflow_conn: psycopg.Connection[Any]
) -> None:
    run = client.start_flow_sync(import_people, {"lines": ["ada,36", "bob,old"]}, timeout=60)
    assert run.status == "failed"
    assert run.error_message is not None
    assert "invalid literal for int()" in run.error_message
    bad = client.get_run_with_states(run.run_id).tasks_of("transform")[1]
    assert (bad.status, bad.attempts_count) == ("failed", 2)
    assert pgflow_conn.execute("SELECT to_regclass('people') AS loaded").fetchone() == {
        "loaded": None
    }


def test_no_lines_completes_with_an_empty_load(client: Client) -> None:
    run = client.start_flow_sync(import_people, {"lines": []}, timeout=60)
    assert run.status == "completed"
    assert run.output == {"load": {"loaded": 0, "skipped_lines": 0, "oldest": None}}


def test_etl_script_imports_its_sample(
    client: Client,
    pgflow_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PGFLOW_DATABASE_URL", pgflow_database_url)
    main([])
    assert capsys.readouterr().out == (
        "completed {'load': {'loaded': 3, 'oldest': 'Grace', 'skipped_lines': 1}}\n"
    )
