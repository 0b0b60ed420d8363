"""Interop: our worker runs flows unchanged on the upstream pgflow 0.8.1 SQL core."""

from __future__ import annotations

from typing import Any

import pytest

from pgflow import Context, Flow
from pgflow.worker import Worker
from tests.worker.conftest import rows, start_run, wait_for_run

pytestmark = pytest.mark.differential


def interop_flow() -> Flow[Any]:
    flow = Flow("interop", timeout=5, base_delay=1, max_attempts=2)

    @flow.array
    def items(run: Any) -> list[int]:
        return list(range(run["n"]))

    @flow.map(items)
    def double(item: int, ctx: Context) -> int:
        if item == 1 and ctx.attempt == 1:
            raise ValueError("transient")
        return item * 2

    @flow.step(items, double)
    async def total(run: Any, listed: list[int], doubled: list[int]) -> dict[str, Any]:
        return {"items": listed, "sum": sum(doubled), "falsy": 0}

    return flow


@pytest.mark.parametrize("core", ["upstream", "ours"])
async def test_same_worker_on_both_cores(
    core: str, upstream_database_url: str, ours_database_url: str
) -> None:
    url = upstream_database_url if core == "upstream" else ours_database_url
    async with Worker([interop_flow()], database_url=url, poll_interval=0.2, summary_interval=3600):
        run = await wait_for_run(url, await start_run(url, "interop", {"n": 3}), timeout=30)
    assert run["status"] == "completed"
    assert run["output"] == {"total": {"items": [0, 1, 2], "sum": 6, "falsy": 0}}
    retried = rows(
        url,
        "SELECT attempts_count FROM pgflow.step_tasks "
        "WHERE step_slug = 'double' AND task_index = 1",
    )
    assert retried == [{"attempts_count": 2}]
