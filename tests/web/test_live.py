"""Live events over server-sent events from a real server, fed by one LISTEN connection, while
a real worker runs the flow."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pgflow import Client
from pgflow.testing._worker import running_worker
from pgflow.web import create_app
from pgflow.web._server import serving
from tests.web.conftest import TOKEN, demo


@pytest.fixture
def flow_database(pgflow_database_url: str) -> str:
    with Client(pgflow_database_url) as client:
        client.ensure_flow(demo)
    return pgflow_database_url


def _subscribed(response: httpx.Response) -> Iterator[str]:
    """The stream's lines, once the server says it listens (events from then on arrive)."""
    lines = response.iter_lines()
    for line in lines:
        if line == ": connected":
            return lines
    raise AssertionError("the stream ended before it was connected")


def _events(lines: Iterator[str], until: str) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: "):
            event = json.loads(line.removeprefix("data: "))
            yield event
            if event["event_type"] == until:
                return


def _start_when_connected(url: str, run_id: uuid.UUID, connected: threading.Event) -> None:
    connected.wait(10)
    with Client(url) as client:
        client.start_flow(demo, {"items": 2}, run_id=run_id)


def test_a_run_streams_its_events_until_it_completes(flow_database: str) -> None:
    run_id = uuid.uuid4()
    connected = threading.Event()
    starter = threading.Thread(
        target=_start_when_connected, args=(flow_database, run_id, connected)
    )
    with (
        running_worker([demo], flow_database),
        serving(create_app(flow_database)) as base,
        httpx.stream("GET", f"{base}/api/events", params={"run_id": str(run_id)}, timeout=30) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = _subscribed(r)
        connected.set()
        starter.start()
        seen = list(_events(lines, until="run:completed"))
    starter.join()
    assert {e["run_id"] for e in seen} == {str(run_id)}
    kinds = [(e["event_type"], e["step_slug"]) for e in seen]
    assert kinds[0] == ("run:started", None)
    assert kinds[-1] == ("run:completed", None)
    for step in ("fetch", "square", "report"):
        assert kinds.index(("step:started", step)) < kinds.index(("step:completed", step))


def test_the_all_runs_stream_sees_new_runs_and_needs_the_token(flow_database: str) -> None:
    with serving(create_app(flow_database, token=TOKEN)) as base:
        assert httpx.get(f"{base}/api/events", timeout=10).status_code == 401
        assert (
            httpx.get(f"{base}/api/events", params={"token": "wrong-token"}, timeout=10).status_code
            == 403
        )
        connected = threading.Event()
        run_id = uuid.uuid4()
        starter = threading.Thread(
            target=_start_when_connected, args=(flow_database, run_id, connected)
        )
        headers = {"authorization": f"Bearer {TOKEN}"}
        with httpx.stream("GET", f"{base}/api/events", headers=headers, timeout=30) as response:
            assert response.status_code == 200
            lines = _subscribed(response)
            connected.set()
            starter.start()
            first = next(_events(lines, until="run:started"))
        starter.join()
    assert (first["event_type"], first["run_id"], first["flow_slug"]) == (
        "run:started",
        str(run_id),
        "web_demo",
    )
