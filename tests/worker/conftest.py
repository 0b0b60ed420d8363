"""Helpers for worker tests: start runs through the SQL API and wait for them to end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


async def start_run(url: str, flow_slug: str, payload: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT run_id FROM pgflow.start_flow(%s, %s)", (flow_slug, Jsonb(payload))
        )
        row = await cur.fetchone()
        assert row is not None
        return row[0]


async def wait_for_run(url: str, run_id: Any, timeout: float = 30) -> dict[str, Any]:
    """Poll the run until it is completed or failed (tests only; clients use LISTEN)."""
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        while True:
            cur = await conn.execute("SELECT * FROM pgflow.runs WHERE run_id = %s", (run_id,))
            run = await cur.fetchone()
            assert run is not None
            if run["status"] != "started":
                return dict(run)
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s")
            await asyncio.sleep(0.02)


def rows(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return [dict(r) for r in conn.execute(query, params).fetchall()]
