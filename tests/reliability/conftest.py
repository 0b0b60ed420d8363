"""The reliability suite: fault injection (workers killed, the server restarted) and many
workers on one flow, with real processes and a real PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgflow import install
from pgflow._embedded import EmbeddedServer

from .harness import restart

#: Room for a fleet of worker processes (each has a pool, a listener and the handlers'
#: bookkeeping connections) and for the server restarts' reconnection bursts.
MAX_CONNECTIONS = 300


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: fault-injection runs (workers killed with SIGKILL, PostgreSQL restarted) "
        "with thousands of runs; a few minutes each",
    )


@pytest.fixture
def own_server() -> Iterator[tuple[EmbeddedServer, str]]:
    """An embedded PostgreSQL of the test's own: it may restart it at will, and its fleet of
    worker processes does not compete for connections with the tests running beside it."""
    base = Path(tempfile.mkdtemp(prefix="pgflow-reliability-"))
    base.chmod(0o755)  # the server runs as an unprivileged user when the tests run as root
    server = EmbeddedServer(base / "data")
    try:
        url = server.start()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        restart(server, "fast")
        install(url)
        yield server, url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
