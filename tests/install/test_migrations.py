"""The three ways to reach the schema agree: step by step, all at once, and `install --sql`."""

from __future__ import annotations

import subprocess
from typing import Any

import psycopg
import pytest

from pgflow import install, install_script
from pgflow import sql as core_sql
from pgflow.installer import install_on, schema_status
from pgflow.testing import TestDatabaseServer, schema_snapshot
from tests._helpers import psql_executable


def _snapshot(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        picture: dict[str, Any] = schema_snapshot(conn)
        picture["bookkeeping"] = conn.execute(
            "SELECT name, kind, checksum FROM pgflow.schema_migrations ORDER BY name"
        ).fetchall()
    return picture


def _psql(url: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [psql_executable(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def three_databases(pgflow_test_server: TestDatabaseServer) -> Any:
    names = [pgflow_test_server.create_database(label="m") for _ in range(3)]
    try:
        yield [pgflow_test_server.url_for(name) for name in names]
    finally:
        for name in names:
            pgflow_test_server.drop_database(name)


def test_migrations_in_order_yield_the_fresh_install_schema(three_databases: list[str]) -> None:
    fresh, stepwise, scripted = three_databases
    install(fresh)

    # Upgrading through every release: one migration per install, functions at the end.
    with psycopg.connect(stepwise, autocommit=True) as conn:
        for migration in core_sql.migrations():
            report = install_on(conn, up_to=migration.version)
            assert report.applied_migrations == [migration.name]
        assert install_on(conn).functions_updated

    result = _psql(scripted, install_script(pgmq="sql"))
    assert result.returncode == 0, result.stderr

    expected = _snapshot(fresh)
    assert expected["relations"], "the fresh install created nothing"
    assert _snapshot(stepwise) == expected
    assert _snapshot(scripted) == expected


def test_sql_script_then_install_is_up_to_date(pgflow_empty_database_url: str) -> None:
    result = _psql(pgflow_empty_database_url, install_script(pgmq="sql"))
    assert result.returncode == 0, result.stderr
    report = install(pgflow_empty_database_url)
    assert report.up_to_date
    with psycopg.connect(pgflow_empty_database_url) as conn:
        assert schema_status(conn).up_to_date


def test_sql_script_without_pgmq_fails_clearly_and_leaves_nothing(
    pgflow_empty_database_url: str,
) -> None:
    result = _psql(pgflow_empty_database_url, install_script(pgmq="check"))
    assert result.returncode != 0
    assert "pgflow needs pgmq >= 1.5.0 in this database, and there is none" in result.stderr
    with psycopg.connect(pgflow_empty_database_url) as conn:
        assert conn.execute("SELECT to_regnamespace('pgflow')").fetchone() == (None,)


def test_sql_script_with_pgmq_already_there(pgflow_database_url: str) -> None:
    # pgmq and pgflow are there already: the pgmq part is skipped, but the schema part is a
    # fresh-install script and must refuse to run twice rather than half-apply.
    result = _psql(pgflow_database_url, install_script(pgmq="sql"))
    assert result.returncode != 0
    assert "already exists" in result.stderr


def test_sql_script_is_one_transaction() -> None:
    script = install_script()
    assert script.count("BEGIN;") == 1
    assert script.rstrip().endswith("COMMIT;")
    for migration in core_sql.migrations():
        assert f"-- migration {migration.name}" in script
