"""Databases for the differential tests: upstream pgflow core 0.8.1 beside ours, same server.

``upstream_database_url``: a fresh database per test, cloned from a template built once per
session with :func:`pgflow.testing._upstream.install_upstream` (the upstream package comes from
the npm registry, cached; nothing of it is stored in this repository).
``ours_database_url``: the plugin's ``pgflow_database_url`` plus the realtime stub, so both
cores record the same events.

When npm or the registry is unavailable the tests are skipped with a loud reason (and a banner
at the end of the session), unless ``PGFLOW_REQUIRE_DIFFERENTIAL=1`` (CI sets it): then they
fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from pgflow.testing import TestDatabaseServer, install_realtime_stub
from pgflow.testing._upstream import (
    UPSTREAM_PACKAGE,
    UPSTREAM_VERSION,
    UpstreamUnavailable,
    install_upstream,
    upstream_migrations,
)
from tests.differential._diff_harness import Side, open_sides

ENV_REQUIRE = "PGFLOW_REQUIRE_DIFFERENTIAL"

_unavailable_reasons: list[str] = []


def _upstream_unavailable(reason: str) -> None:
    message = (
        f"DIFFERENTIAL TESTS NOT RUN: upstream {UPSTREAM_PACKAGE}@{UPSTREAM_VERSION} is "
        f"unavailable ({reason}). Install node/npm and allow access to the npm registry, or "
        f"set {ENV_REQUIRE}=1 to make this a failure."
    )
    _unavailable_reasons.append(reason)
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _unavailable_reasons:
        terminalreporter.section("pgflow differential tests", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"NOT RUN: upstream {UPSTREAM_PACKAGE}@{UPSTREAM_VERSION} unavailable: "
            f"{_unavailable_reasons[0]}",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def upstream_template(pgflow_test_server: TestDatabaseServer) -> Iterator[str]:
    """A database with pgmq, the realtime stub and the upstream core; cloned by tests."""
    try:
        migrations = upstream_migrations()
    except UpstreamUnavailable as exc:
        reason = exc.reason
    else:
        reason = None
    if reason is not None:
        _upstream_unavailable(reason)  # skips or fails
    name = pgflow_test_server.create_database(label="uptpl")
    try:
        with psycopg.connect(pgflow_test_server.url_for(name), autocommit=True) as conn:
            install_upstream(conn, migrations)
        yield name
    finally:
        pgflow_test_server.drop_database(name)


@pytest.fixture
def upstream_database_url(
    pgflow_test_server: TestDatabaseServer, upstream_template: str
) -> Iterator[str]:
    """URL of a fresh database with the upstream core 0.8.1 (and the realtime stub)."""
    name = pgflow_test_server.create_database(template=upstream_template, label="up")
    try:
        yield pgflow_test_server.url_for(name)
    finally:
        pgflow_test_server.drop_database(name)


@pytest.fixture
def ours_database_url(pgflow_database_url: str) -> str:
    """The plugin's per-test database (pgmq + our core) with the realtime stub added."""
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        install_realtime_stub(conn)
    return pgflow_database_url


@pytest.fixture
def sides(upstream_database_url: str, ours_database_url: str) -> Iterator[tuple[Side, Side]]:
    """Connections to upstream's and our database, for the differential driver."""
    upstream, ours = open_sides(upstream_database_url, ours_database_url)
    try:
        yield upstream, ours
    finally:
        upstream.close()
        ours.close()


@pytest.fixture
def upstream_twins(
    pgflow_test_server: TestDatabaseServer, upstream_template: str, upstream_database_url: str
) -> Iterator[tuple[Side, Side]]:
    """Two upstream databases, to check that the harness itself finds no difference."""
    name = pgflow_test_server.create_database(template=upstream_template, label="up")
    first, second = open_sides(upstream_database_url, pgflow_test_server.url_for(name))
    second.name = "upstream-twin"
    try:
        yield first, second
    finally:
        first.close()
        second.close()
        pgflow_test_server.drop_database(name)


@pytest.fixture(scope="module")
def module_sides(
    pgflow_test_server: TestDatabaseServer, pgflow_template: str, upstream_template: str
) -> Iterator[tuple[Side, Side]]:
    """One upstream and one of our databases for a whole module of scripted scenarios.

    Creating and dropping two databases costs more than a scenario itself; scenarios stay
    isolated because each drives a flow (and so a queue) of its own and the harness clears
    the recorded events when it starts one.
    """
    names = [
        pgflow_test_server.create_database(template=upstream_template, label="up"),
        pgflow_test_server.create_database(template=pgflow_template, label="ours"),
    ]
    try:
        with psycopg.connect(pgflow_test_server.url_for(names[1]), autocommit=True) as conn:
            install_realtime_stub(conn)
        upstream, ours = open_sides(*(pgflow_test_server.url_for(n) for n in names))
        try:
            yield upstream, ours
        finally:
            upstream.close()
            ours.close()
    finally:
        for name in names:
            pgflow_test_server.drop_database(name)
