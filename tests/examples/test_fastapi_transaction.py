"""examples/fastapi_transaction: the row and the run commit together, or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from examples.fastapi_transaction.app import create_app
from examples.fastapi_transaction.flow import onboarding

from pgflow.worker import Worker


@pytest.fixture
async def http(pgflow_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(pgflow_database_url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://example.test"
        ) as client,
    ):
        yield client


async def _until_onboarded(http: httpx.AsyncClient, created: dict[str, Any]) -> dict[str, Any]:
    for _ in range(300):
        response = await http.get(
            f"/signups/{created['signup_id']}", params={"run_id": created["run_id"]}
        )
        state: dict[str, Any] = response.json()
        if state["onboarding"] != "started":
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"onboarding did not finish: {state}")


async def test_signup_starts_onboarding_which_the_worker_runs(
    http: httpx.AsyncClient, pgflow_database_url: str
) -> None:
    async with Worker([onboarding], database_url=pgflow_database_url, poll_interval=0.2):
        response = await http.post("/signups", json={"email": "ada@example.com"})
        assert response.status_code == 201
        created = response.json()
        state = await _until_onboarded(http, created)
    assert state == {
        "signup_id": created["signup_id"],
        "email": "ada@example.com",
        "welcomed": True,
        "onboarding": "completed",
    }
    with psycopg.connect(pgflow_database_url) as conn:
        output = conn.execute(
            "SELECT output FROM pgflow.runs WHERE run_id = %s", (created["run_id"],)
        ).fetchone()
    assert output == ({"welcome": "welcomed ada@example.com (trial)"},)


async def test_a_refused_signup_starts_no_run(
    http: httpx.AsyncClient, pgflow_database_url: str
) -> None:
    first = await http.post("/signups", json={"email": "ada@example.com", "plan": "pro"})
    assert first.status_code == 201
    again = await http.post("/signups", json={"email": "ada@example.com"})
    assert again.status_code == 409
    assert again.json() == {"detail": "ada@example.com has signed up already"}
    with psycopg.connect(pgflow_database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM signups), (SELECT count(*) FROM pgflow.runs), "
            "(SELECT count(*) FROM pgmq.q_onboarding)"
        ).fetchone()
    assert counts == (1, 1, 1)
