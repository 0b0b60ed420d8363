"""pytest fixtures for code that uses pgflow: real PostgreSQL, one fresh database per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow, dict_row

from pgflow.testing._server import TestDatabaseServer


def _run_id(config: pytest.Config) -> str | None:
    # pytest-xdist workers of one run share this id, so they share one embedded server.
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:
        return str(worker_input.get("testrunuid"))
    return os.environ.get("PYTEST_XDIST_TESTRUNUID")


@pytest.fixture(scope="session")
def pgflow_test_server(request: pytest.FixtureRequest) -> TestDatabaseServer:
    """The PostgreSQL server of this test session (``PGFLOW_TEST_DATABASE_URL`` or embedded)."""
    return TestDatabaseServer.from_environment(_run_id(request.config))


@pytest.fixture(scope="session")
def pgflow_template(pgflow_test_server: TestDatabaseServer) -> str:
    """Name of the template database (pgmq + pgflow schema), built once per schema version."""
    return pgflow_test_server.template()


@pytest.fixture
def pgflow_database_url(
    pgflow_test_server: TestDatabaseServer, pgflow_template: str
) -> Iterator[str]:
    """URL of a database of this test's own, cloned from the template; dropped afterwards."""
    name = pgflow_test_server.create_database(template=pgflow_template)
    try:
        yield pgflow_test_server.url_for(name)
    finally:
        pgflow_test_server.drop_database(name)


@pytest.fixture
def pgflow_empty_database_url(pgflow_test_server: TestDatabaseServer) -> Iterator[str]:
    """URL of an empty database (no pgmq, no pgflow schema); dropped afterwards."""
    name = pgflow_test_server.create_database(label="e")
    try:
        yield pgflow_test_server.url_for(name)
    finally:
        pgflow_test_server.drop_database(name)


@pytest.fixture
def pgflow_conn(pgflow_database_url: str) -> Iterator[psycopg.Connection[DictRow]]:
    """An autocommit connection with dict rows to this test's database."""
    with psycopg.connect(pgflow_database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
async def pgflow_aconn(pgflow_database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An async autocommit connection with dict rows (needs pytest-asyncio or anyio)."""
    conn = await psycopg.AsyncConnection.connect(
        pgflow_database_url, autocommit=True, row_factory=dict_row
    )
    try:
        yield conn
    finally:
        await conn.close()
