"""The `pgflow` command: help, install/status, one-line errors, the embedded server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests._helpers import run_cli

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=3"


def _assert_one_line_error(result: object, fragment: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    err = result.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert fragment in err


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("install", "status", "db"):
        assert command in result.stdout


def test_install_help_explains_the_options() -> None:
    result = run_cli("install", "--help")
    assert result.returncode == 0
    for option in ("--database-url", "--sql", "--pgmq", "PGFLOW_DATABASE_URL"):
        assert option in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("pgflow-py ")


def test_install_then_status_with_the_flag(pgflow_empty_database_url: str) -> None:
    first = run_cli("install", "--database-url", pgflow_empty_database_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("installed pgmq")
    second = run_cli("install", "-d", pgflow_empty_database_url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "pgflow schema is up to date"
    status = run_cli("status", "-d", pgflow_empty_database_url)
    assert status.returncode == 0, status.stderr
    assert "up to date" in status.stdout


def test_environment_variable_is_used(pgflow_empty_database_url: str) -> None:
    result = run_cli("install", env={"PGFLOW_DATABASE_URL": pgflow_empty_database_url})
    assert result.returncode == 0, result.stderr
    assert "Using the embedded PostgreSQL" not in result.stderr
    with psycopg.connect(pgflow_empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('pgflow.runs')").fetchone() == ("pgflow.runs",)


def test_flag_wins_over_the_environment(pgflow_empty_database_url: str) -> None:
    result = run_cli(
        "install", "-d", pgflow_empty_database_url, env={"PGFLOW_DATABASE_URL": UNREACHABLE}
    )
    assert result.returncode == 0, result.stderr


def test_status_of_an_empty_database_exits_1(pgflow_empty_database_url: str) -> None:
    result = run_cli("status", "--json", "-d", pgflow_empty_database_url)
    assert result.returncode == 1
    assert '"up_to_date": false' in result.stdout


def test_unreachable_database_is_one_line(pgflow_test_server: object) -> None:
    _assert_one_line_error(run_cli("install", "-d", UNREACHABLE), "cannot connect to")


def test_bad_url_is_one_line() -> None:
    _assert_one_line_error(
        run_cli("status", "-d", "postgresql://a b"), "--database-url is not a valid PostgreSQL URL"
    )
    _assert_one_line_error(
        run_cli("status", env={"DATABASE_URL": "bogus=1"}), "DATABASE_URL is not a valid"
    )


def test_missing_permission_is_one_line(
    pgflow_empty_database_url: str, role_without_create: str
) -> None:
    url = psycopg.conninfo.make_conninfo(pgflow_empty_database_url, user=role_without_create)
    _assert_one_line_error(run_cli("install", "-d", url), "permission denied")


def test_install_sql_needs_no_database() -> None:
    result = run_cli("install", "--sql", env={"PGFLOW_DATABASE_URL": UNREACHABLE})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-- pgflow-py")
    assert "CREATE TABLE pgflow.flows" in result.stdout
    assert result.stdout.rstrip().endswith("COMMIT;")


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="pgflow-cli-"))
    base.chmod(0o755)
    data = base / "data"
    try:
        yield data
    finally:
        run_cli("db", "stop", env={"PGFLOW_EMBEDDED_DIR": str(data)})
        shutil.rmtree(base, ignore_errors=True)


def test_embedded_server_life_cycle(embedded_dir: Path) -> None:
    env = {"PGFLOW_EMBEDDED_DIR": str(embedded_dir)}
    before = run_cli("db", "status", env=env)
    assert before.returncode == 0
    assert "not running (not created yet)" in before.stdout
    assert run_cli("db", "url", env=env).returncode == 1

    started = run_cli("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("postgresql://")
    assert run_cli("db", "url", env=env).stdout.strip() == url
    assert run_cli("db", "start", env=env).stdout.strip() == url  # reused, not restarted

    installed = run_cli("install", env=env)
    assert installed.returncode == 0, installed.stderr
    assert f"Using the embedded PostgreSQL in {embedded_dir}" in installed.stderr
    assert run_cli("status", env=env).returncode == 0

    stopped = run_cli("db", "stop", env=env)
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert run_cli("db", "url", env=env).returncode == 1
    assert "not running" in run_cli("db", "stop", env=env).stdout

    # The data survives a restart: the schema is still there.
    assert run_cli("db", "start", env=env).returncode == 0
    again = run_cli("install", env=env)
    assert again.stdout.strip() == "pgflow schema is up to date"


def test_health_command(pgflow_database_url: str) -> None:
    healthy = run_cli("health", "-d", pgflow_database_url)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "healthy" in healthy.stdout
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("SELECT pgflow.create_flow('unserved')")
        conn.execute("SELECT pgflow.add_step('unserved', 'only')")
        conn.execute("SELECT pgflow.start_flow('unserved', '{}')")
    sick = run_cli("health", "--json", "-d", pgflow_database_url)
    assert sick.returncode == 1
    assert '"healthy": false' in sick.stdout
    assert "flow 'unserved' has 1 queued message(s) and no live worker" in sick.stdout
    unreachable = run_cli("health", "-d", UNREACHABLE)
    assert unreachable.returncode == 1
    assert "unreachable" in unreachable.stdout
