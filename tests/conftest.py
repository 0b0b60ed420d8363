"""Shared test helpers. Fixtures for databases come from the pgflow pytest plugin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgflow.testing import TestDatabaseServer


@pytest.fixture
def role_without_create(pgflow_test_server: TestDatabaseServer) -> Iterator[str]:
    """A login role that may connect but not create schemas; dropped afterwards."""
    name = f"pgflow_test_role_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures a test recorded (``record_property("figures", ...)``: the reliability suite),
    shown even when output is captured. Here, in the root conftest, because with xdist only the
    controller writes the summary, and it loads no conftest below this one."""
    lines = [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for key, value in getattr(report, "user_properties", [])
        if key == "figures"
    ]
    if lines:
        terminalreporter.write_sep("-", "figures")
        for line in lines:
            terminalreporter.write_line(line)
