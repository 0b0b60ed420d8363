"""A database with real runs of a real flow (run by a real worker), and the dashboard on it."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pgflow import Client, Flow
from pgflow.testing import TestDatabaseServer
from pgflow.testing._worker import running_worker
from pgflow.web import create_app

#: A step output and an error message that would run script if a page pasted them as HTML.
HOSTILE_OUTPUT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
HOSTILE_ERROR = "boom <b>bold</b> <script>window.__xss = 3</script>"
TOKEN = "s3cret-dashboard-token"

demo = Flow("web_demo", max_attempts=1, timeout=15)


@demo.step
async def fetch(run: dict[str, Any]) -> list[int]:
    await asyncio.sleep(float(run.get("sleep", 0)))
    return list(range(int(run.get("items", 3))))


@demo.map(fetch)
def square(n: int) -> int:
    return n * n


@demo.step(fetch, square)
def report(run: dict[str, Any], items: list[int], squares: list[int]) -> Any:
    if run.get("fail"):
        raise RuntimeError(run["fail"])
    return run.get("say", {"total": sum(squares)})


@pytest.fixture(scope="module")
def populated(
    pgflow_test_server: TestDatabaseServer, pgflow_template: str
) -> Iterator[dict[str, Any]]:
    """One database for a module of read-only tests: a completed run, a failed one and one
    whose output is hostile HTML, all run by a worker."""
    name = pgflow_test_server.create_database(template=pgflow_template)
    url = pgflow_test_server.url_for(name)
    try:
        with Client(url) as client:
            client.ensure_flow(demo)
            with running_worker([demo], url):
                runs = {
                    "completed": client.start_flow_sync(demo, {"items": 3}, timeout=30),
                    "failed": client.start_flow_sync(demo, {"fail": HOSTILE_ERROR}, timeout=30),
                    "hostile": client.start_flow_sync(demo, {"say": HOSTILE_OUTPUT}, timeout=30),
                }
        assert [r.status for r in runs.values()] == ["completed", "failed", "completed"]
        yield {"url": url, **{key: run.run_id for key, run in runs.items()}}
    finally:
        pgflow_test_server.drop_database(name)


@pytest.fixture
def api(populated: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(populated["url"])) as client:
        yield client


def chromium_path() -> str | None:
    """The system Chromium (Debian's package), or None; no browser is ever downloaded."""
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    found = chromium_path()
    if found is None:
        reason = "no system Chromium (/usr/bin/chromium): browser tests need `apt install chromium`"
        if os.environ.get("PGFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PGFLOW_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return found
