"""Testing helpers, also shipped to users as a pytest plugin (registered as ``pgflow``).

Fixtures (from :mod:`pgflow.testing.plugin`):

* ``pgflow_test_server``: the session's :class:`TestDatabaseServer`.
* ``pgflow_database_url``: a fresh database for one test, with pgmq and the pgflow schema.
* ``pgflow_conn`` / ``pgflow_aconn``: sync and async autocommit connections to it (dict rows).
* ``pgflow_empty_database_url``: a fresh empty database (no pgmq, no schema), for install tests.
"""

from __future__ import annotations

import psycopg

from pgflow import sql as core_sql
from pgflow.testing._server import ENV_TEST_DATABASE_URL, TestDatabaseServer
from pgflow.testing._snapshot import schema_snapshot
from pgflow.testing._worker import running_worker


def install_realtime_stub(conn: psycopg.Connection[object]) -> None:
    """Create a stand-in for Supabase's ``realtime`` schema, recording sent events in a table."""
    conn.execute(core_sql.testing_sql("realtime_stub"))


__all__ = [
    "ENV_TEST_DATABASE_URL",
    "TestDatabaseServer",
    "install_realtime_stub",
    "running_worker",
    "schema_snapshot",
]
