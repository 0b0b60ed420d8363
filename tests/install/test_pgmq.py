"""pgmq: kept when present (>= 1.5), created as an extension when offered, else from SQL."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgflow import IncompatiblePgmqError, install
from pgflow.installer import bundled_pgmq_sql, bundled_pgmq_version, install_on, parse_version

OLD_PGMQ_SCRIPT = """
CREATE TABLE pgmq.meta (queue_name varchar UNIQUE NOT NULL);
CREATE TYPE pgmq.message_record AS (msg_id bigint, read_ct integer, enqueued_at timestamptz,
                                    vt timestamptz, message jsonb);
"""


def _server_major(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000  # type: ignore[index]


def _extension_dir(tmp_path: Path, version: str, script: str) -> Path:
    """A directory holding pgmq as an installable extension (pgmq's own SQL is the script)."""
    root = tmp_path / f"pgmq-{version}"
    extension = root / "extension"
    extension.mkdir(parents=True)
    (extension / "pgmq.control").write_text(
        f"comment = 'pgmq for tests'\ndefault_version = '{version}'\n"
        "relocatable = false\nschema = pgmq\n"
    )
    (extension / f"pgmq--{version}.sql").write_text(script)
    # The server may run as another user (the embedded one does when tests run as root).
    for path in (tmp_path, root, extension, *extension.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture
def readable_tmp() -> Iterator[Path]:
    """A temporary directory that a server running as another user can read (tmp_path cannot)."""
    path = Path(tempfile.mkdtemp(prefix="pgflow-ext-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def offering(pgflow_empty_database_url: str, readable_tmp: Path) -> object:
    """Connect with the server's extension search path extended by a directory of ours."""
    if _server_major(pgflow_empty_database_url) < 18:
        pytest.skip(
            "offering an extension from a test directory needs extension_control_path "
            "(PostgreSQL >= 18); the embedded PostgreSQL 18 run covers this"
        )

    def connect(version: str, script: str) -> psycopg.Connection:
        root = _extension_dir(readable_tmp, version, script)
        return psycopg.connect(
            pgflow_empty_database_url,
            autocommit=True,
            options=f"-c extension_control_path=$system:{root}",
        )

    return connect


def test_sql_path_when_the_server_offers_no_pgmq(pgflow_empty_database_url: str) -> None:
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        offered = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgmq'"
        ).fetchone()
        if offered != (0,):
            pytest.skip("this server offers pgmq as an extension")
        report = install_on(conn)
        assert (report.pgmq_method, report.pgmq_version) == ("sql", bundled_pgmq_version())
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pgmq'"
        ).fetchone() == (0,)
        conn.execute("SELECT pgmq.create('probe')")
        conn.execute("SELECT pgmq.send('probe', '{\"a\": 1}')")
        assert conn.execute("SELECT count(*) FROM pgmq.q_probe").fetchone() == (1,)


def test_extension_path_when_the_server_offers_pgmq(offering) -> None:  # type: ignore[no-untyped-def]
    version = bundled_pgmq_version()
    with offering(version, bundled_pgmq_sql()) as conn:
        report = install_on(conn)
        assert (report.pgmq_method, report.pgmq_version) == ("extension", version)
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pgmq'").fetchone()
        assert row == (version,)
        again = install_on(conn)
        assert again.up_to_date
        assert (again.pgmq_method, again.pgmq_version) == ("present", version)


def test_offered_old_pgmq_is_refused_before_anything_changes(offering) -> None:  # type: ignore[no-untyped-def]
    with offering("1.4.5", OLD_PGMQ_SCRIPT) as conn:
        with pytest.raises(IncompatiblePgmqError, match=r"offers pgmq 1\.4\.5 only.*>= 1\.5\.0"):
            install_on(conn)
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('pgmq', 'pgflow')"
        ).fetchall()
        assert schemas == []


def test_installed_old_pgmq_extension_is_refused(offering) -> None:  # type: ignore[no-untyped-def]
    with offering("1.4.5", OLD_PGMQ_SCRIPT) as conn:
        conn.execute("CREATE SCHEMA pgmq; CREATE EXTENSION pgmq WITH SCHEMA pgmq")
        with pytest.raises(IncompatiblePgmqError, match="ALTER EXTENSION pgmq UPDATE"):
            install_on(conn)
        assert conn.execute("SELECT to_regnamespace('pgflow')").fetchone() == (None,)


def test_old_pgmq_installed_from_sql_is_refused(pgflow_empty_database_url: str) -> None:
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pgmq")
        conn.execute(OLD_PGMQ_SCRIPT)
        with pytest.raises(IncompatiblePgmqError, match=r"older than 1\.5\.0.*'headers'"):
            install_on(conn)
        assert conn.execute("SELECT to_regnamespace('pgflow')").fetchone() == (None,)


def test_existing_pgmq_from_sql_is_kept(pgflow_empty_database_url: str) -> None:
    with psycopg.connect(pgflow_empty_database_url, autocommit=True) as conn:
        conn.execute(bundled_pgmq_sql())
        conn.execute("SELECT pgmq.create('keep_me')")
        conn.execute("SELECT pgmq.send('keep_me', '{}')")
    report = install(pgflow_empty_database_url)
    assert report.pgmq_method == "present"
    with psycopg.connect(pgflow_empty_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pgmq.q_keep_me").fetchone() == (1,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.5.0", (1, 5, 0)), ("1.13.0", (1, 13, 0)), ("1.5.1-rc1", (1, 5, 1)), ("2", (2,))],
)
def test_parse_version(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected


def test_bundled_pgmq_is_recent_enough() -> None:
    assert parse_version(bundled_pgmq_version()) >= (1, 5, 0)
