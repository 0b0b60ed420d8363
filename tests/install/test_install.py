"""pgflow.install on real databases: fresh, repeated, concurrent, refused."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql

from pgflow import InstallError, install
from pgflow import sql as core_sql
from pgflow.installer import FUNCTIONS_RECORD, install_on, schema_status

CORE_TABLES = {"flows", "steps", "deps", "runs", "step_states", "step_tasks", "workers"}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'pgflow'"
        ).fetchall()
    return {r[0] for r in rows}


def test_fresh_install_creates_pgmq_and_the_schema(pgflow_empty_database_url: str) -> None:
    report = install(pgflow_empty_database_url)

    assert report.pgmq_method in {"sql", "extension"}
    assert report.applied_migrations == [m.name for m in core_sql.migrations()]
    assert report.functions_updated
    assert not report.up_to_date
    assert CORE_TABLES | {"schema_migrations"} <= _tables(pgflow_empty_database_url)
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        status = schema_status(conn)
        recorded = dict(
            conn.execute("SELECT name, checksum FROM pgflow.schema_migrations").fetchall()
        )
    assert status.up_to_date
    assert recorded[FUNCTIONS_RECORD] == core_sql.functions_checksum()
    for migration in core_sql.migrations():
        assert recorded[migration.name] == migration.checksum


def test_second_install_is_a_no_op(pgflow_empty_database_url: str) -> None:
    install(pgflow_empty_database_url)
    with psycopg.connect(pgflow_empty_database_url) as conn:
        before = conn.execute(
            "SELECT name, applied_at FROM pgflow.schema_migrations ORDER BY name"
        ).fetchall()

    again = install(pgflow_empty_database_url)

    assert again.up_to_date
    assert again.summary() == "pgflow schema is up to date"
    assert again.pgmq_method == "present"
    with psycopg.connect(pgflow_empty_database_url) as conn:
        after = conn.execute(
            "SELECT name, applied_at FROM pgflow.schema_migrations ORDER BY name"
        ).fetchall()
    assert after == before


def test_concurrent_installs_serialise_and_apply_once(pgflow_empty_database_url: str) -> None:
    reports = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        try:
            start.wait()
            reports.append(install(pgflow_empty_database_url))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert len(reports) == 4
    assert sum(1 for r in reports if r.applied_migrations) == 1
    assert sum(1 for r in reports if r.pgmq_method != "present") == 1
    assert sum(1 for r in reports if r.up_to_date) == 3
    with psycopg.connect(pgflow_empty_database_url) as conn:
        count = conn.execute("SELECT count(*) FROM pgflow.schema_migrations").fetchone()
    assert count == (len(core_sql.migrations()) + 1,)


def test_changed_functions_are_reapplied(pgflow_empty_database_url: str) -> None:
    install(pgflow_empty_database_url)
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE pgflow.schema_migrations SET checksum = 'stale' WHERE name = %s",
            (FUNCTIONS_RECORD,),
        )
        conn.execute("DROP FUNCTION pgflow.calculate_retry_delay(numeric, int)")
        report = install_on(conn)
        assert report.functions_updated
        assert not report.applied_migrations
        assert conn.execute("SELECT pgflow.calculate_retry_delay(5, 2)").fetchone() == (20,)


def test_database_from_a_newer_version_is_refused(pgflow_empty_database_url: str) -> None:
    install(pgflow_empty_database_url)
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgflow.schema_migrations (name, kind, checksum, installed_by) "
            "VALUES ('9999_from_the_future', 'migration', 'x', '99.0')"
        )
        checksum_before = conn.execute(
            "SELECT checksum FROM pgflow.schema_migrations WHERE name = %s", (FUNCTIONS_RECORD,)
        ).fetchone()
        conn.execute(
            "UPDATE pgflow.schema_migrations SET checksum = 'older' WHERE kind = 'functions'"
        )
        with pytest.raises(InstallError, match=r"9999_from_the_future.*upgrade pgflow-py"):
            install_on(conn)
        # The refused install did not overwrite the newer functions.
        assert conn.execute(
            "SELECT checksum FROM pgflow.schema_migrations WHERE kind = 'functions'"
        ).fetchone() == ("older",)
    assert checksum_before is not None


def test_a_pgflow_schema_installed_by_someone_else_is_left_alone(
    pgflow_empty_database_url: str,
) -> None:
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pgflow; CREATE TABLE pgflow.flows (flow_slug text)")
        with pytest.raises(InstallError, match="did not install"):
            install_on(conn)
        row = conn.execute("SELECT to_regclass('pgflow.schema_migrations')").fetchone()
        assert row == (None,)


def test_missing_permission_is_one_clear_error_and_changes_nothing(
    pgflow_empty_database_url: str, role_without_create: str
) -> None:
    url = psycopg.conninfo.make_conninfo(pgflow_empty_database_url, user=role_without_create)
    with pytest.raises(InstallError) as caught:
        install(url)
    message = str(caught.value)
    assert "permission denied" in message
    assert "\n" not in message
    with psycopg.connect(pgflow_empty_database_url) as conn:
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('pgmq', 'pgflow')"
        ).fetchall()
    assert schemas == []


def test_install_needs_an_idle_connection(pgflow_empty_database_url: str) -> None:
    with psycopg.connect(pgflow_empty_database_url) as conn:
        conn.execute("SELECT 1")  # opens a transaction
        with pytest.raises(InstallError, match="not inside a transaction"):
            install_on(conn)


def test_install_into_a_database_with_an_unrelated_schema(pgflow_empty_database_url: str) -> None:
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA app; CREATE TABLE app.orders (id int)"))
    report = install(pgflow_empty_database_url)
    assert report.applied_migrations
    assert "orders" not in _tables(pgflow_empty_database_url)


def test_realtime_is_detected_when_present(pgflow_empty_database_url: str) -> None:
    from pgflow.testing import install_realtime_stub

    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        assert not install_on(conn).realtime
        install_realtime_stub(conn)
        assert install_on(conn).realtime
