"""Upgrading from the previous release with runs in flight.

The previous release is frozen in ``releases/0ad7595.sql`` (that commit's own ``pgflow install
--sql --pgmq check``: migrations 0001-0003 and its functions), so these tests need no git
history. Runs are started on the old schema, some of their tasks taken by a worker speaking the
plain 0.8.1 protocol (``pgmq.read`` + ``start_tasks``), then today's installer upgrades the
database, the old worker finishes the tasks it holds, and today's worker finishes the runs.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgflow import Client, Flow, install
from pgflow import sql as core_sql
from pgflow.installer import _install_pgmq, install_on
from pgflow.testing import schema_snapshot
from pgflow.testing._worker import running_worker

PREVIOUS_RELEASE = Path(__file__).parent / "releases" / "0ad7595.sql"
PREVIOUS_MIGRATIONS = ["0001_core_schema", "0002_stalled_task_recovery", "0003_run_listing_indexes"]
OLD_WORKER = uuid.UUID(int=7)

chain = Flow("upgrade_chain")


@chain.step
def first(run: dict[str, int]) -> int:
    return run["n"] + 1


@chain.step(first)
def second(run: dict[str, int], first: int) -> int:
    return first * 10


squares = Flow[list[int]]("upgrade_squares")


@squares.map()
def square(item: int) -> int:
    return item * item


#: The same two flows as the old release's users would have created them: plain 0.8.1 SQL.
OLD_FLOW_SQL = """
    SELECT pgflow.create_flow('upgrade_chain');
    SELECT pgflow.add_step('upgrade_chain', 'first');
    SELECT pgflow.add_step('upgrade_chain', 'second', ARRAY['first']);
    SELECT pgflow.create_flow('upgrade_squares');
    SELECT pgflow.add_step('upgrade_squares', 'square', step_type => 'map');
"""


def _install_previous_release(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        _install_pgmq(conn)
        conn.execute(PREVIOUS_RELEASE.read_text())  # type: ignore[arg-type]  # a trusted script
        conn.execute(OLD_FLOW_SQL)  # type: ignore[arg-type]


def _start(conn: psycopg.Connection[Any], flow_slug: str, payload: Any) -> uuid.UUID:
    row = conn.execute(
        "SELECT run_id FROM pgflow.start_flow(%s, %s)", (flow_slug, Jsonb(payload))
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row["run_id"]))


def _old_worker_takes(conn: psycopg.Connection[Any], flow_slug: str, qty: int) -> list[Any]:
    """What a 0.8.1 worker does: register, read messages, claim their tasks with start_tasks."""
    conn.execute(
        "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) VALUES (%s, %s, 'old')"
        " ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat_at = now()",
        (OLD_WORKER, flow_slug),
    )
    messages = conn.execute(
        "SELECT msg_id FROM pgmq.read(%s, 60, %s) ORDER BY msg_id", (flow_slug, qty)
    ).fetchall()
    return conn.execute(
        "SELECT * FROM pgflow.start_tasks(%s, %s, %s) ORDER BY run_id, task_index",
        (flow_slug, [m["msg_id"] for m in messages], OLD_WORKER),
    ).fetchall()


def _old_worker_completes(conn: psycopg.Connection[Any], task: Any, output: Any) -> None:
    conn.execute(
        "SELECT pgflow.complete_task(%s, %s, %s, %s)",
        (task["run_id"], task["step_slug"], task["task_index"], Jsonb(output)),
    )


def _runs_in_flight(conn: psycopg.Connection[Any]) -> tuple[dict[str, uuid.UUID], list[Any]]:
    """Runs at every stage on the old schema; returns them and the tasks the old worker holds."""
    runs = {
        "untouched": _start(conn, "upgrade_chain", {"n": 1}),
        "first_done": _start(conn, "upgrade_chain", {"n": 2}),
    }
    taken = _old_worker_takes(conn, "upgrade_chain", 2)
    assert {t["step_slug"] for t in taken} == {"first"}
    held = [t for t in taken if t["run_id"] == runs["untouched"]]  # started, not finished
    for task in taken:
        if task["run_id"] == runs["first_done"]:
            _old_worker_completes(conn, task, task["input"]["run"]["n"] + 1)
    # The completed first step queued the second; the old worker takes that one too.
    held += _old_worker_takes(conn, "upgrade_chain", 5)
    runs["map"] = _start(conn, "upgrade_squares", [1, 2, 3])
    map_tasks = _old_worker_takes(conn, "upgrade_squares", 2)
    _old_worker_completes(conn, map_tasks[0], map_tasks[0]["input"] ** 2)
    held += map_tasks[1:]
    return runs, held


EXPECTED_OUTPUTS = {
    "untouched": {"second": 20},
    "first_done": {"second": 30},
    "map": {"square": [1, 4, 9]},
}


def _finish_and_check(
    url: str, conn: psycopg.Connection[Any], runs: dict[str, uuid.UUID], held: list[Any]
) -> None:
    # The old worker was mid-task during the upgrade; it reports with the 0.8.1 call.
    for task in held:
        payload = task["input"]
        if task["step_slug"] == "first":
            output: Any = payload["run"]["n"] + 1
        elif task["step_slug"] == "second":
            output = payload["first"] * 10
        else:
            output = payload * payload
        _old_worker_completes(conn, task, output)
    with running_worker([chain, squares], url), Client(url) as client:
        finished = {name: client.wait(run_id, timeout=30) for name, run_id in runs.items()}
    assert {name: run.status for name, run in finished.items()} == dict.fromkeys(runs, "completed")
    assert {name: run.output for name, run in finished.items()} == EXPECTED_OUTPUTS


def _assert_like_fresh_install(upgraded: psycopg.Connection[Any], fresh_url: str) -> None:
    with psycopg.connect(fresh_url) as fresh:
        assert schema_snapshot(upgraded) == schema_snapshot(fresh)
    # The flows made before have their queue statements (the installer writes them).
    without = upgraded.execute(
        "SELECT flow_slug FROM pgflow.flows "
        "WHERE to_regproc('pgflow._queue_' || lower(flow_slug)) IS NULL"
    ).fetchall()
    assert without == []
    names = [
        row["name"]
        for row in upgraded.execute(
            "SELECT name FROM pgflow.schema_migrations WHERE kind = 'migration' ORDER BY name"
        ).fetchall()
    ]
    assert names == [m.name for m in core_sql.migrations()]


@pytest.fixture
def old_release(pgflow_empty_database_url: str) -> Any:
    _install_previous_release(pgflow_empty_database_url)
    with psycopg.connect(pgflow_empty_database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def test_previous_release_is_migrations_0001_to_0003(old_release: psycopg.Connection[Any]) -> None:
    names = old_release.execute(
        "SELECT name FROM pgflow.schema_migrations WHERE kind = 'migration' ORDER BY name"
    ).fetchall()
    assert [row["name"] for row in names] == PREVIOUS_MIGRATIONS


def test_upgrade_in_one_jump_finishes_runs_started_before(
    old_release: psycopg.Connection[Any], pgflow_empty_database_url: str, pgflow_database_url: str
) -> None:
    runs, held = _runs_in_flight(old_release)

    report = install(pgflow_empty_database_url)

    assert report.applied_migrations == [
        m.name for m in core_sql.migrations() if m.name not in PREVIOUS_MIGRATIONS
    ]
    assert report.functions_updated
    _finish_and_check(pgflow_empty_database_url, old_release, runs, held)
    _assert_like_fresh_install(old_release, pgflow_database_url)


def test_each_later_migration_applies_on_the_previous_ones_with_data(
    old_release: psycopg.Connection[Any], pgflow_empty_database_url: str, pgflow_database_url: str
) -> None:
    runs, held = _runs_in_flight(old_release)
    runs_before = old_release.execute(
        "SELECT run_id, status, remaining_steps FROM pgflow.runs ORDER BY run_id"
    ).fetchall()

    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as installer_conn:
        for migration in core_sql.migrations():
            if migration.name in PREVIOUS_MIGRATIONS:
                continue
            report = install_on(installer_conn, up_to=migration.version)
            assert report.applied_migrations == [migration.name]
            # No migration touches the runs in flight.
            assert (
                old_release.execute(
                    "SELECT run_id, status, remaining_steps FROM pgflow.runs ORDER BY run_id"
                ).fetchall()
                == runs_before
            )
        assert install_on(installer_conn).functions_updated

    _finish_and_check(pgflow_empty_database_url, old_release, runs, held)
    _assert_like_fresh_install(old_release, pgflow_database_url)
