"""A worker cut off from the database for longer than a step's timeout plus the stalled margin
has its task recovered and run again elsewhere; when its report arrives late, after the new
execution claimed the task, the effects of a transactional step must still happen once."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pgflow import Context, Flow
from pgflow.flows import aensure_flow
from pgflow.worker import Worker

from ..worker.conftest import rows, start_run, wait_for_run

CUT_OFF_WORKER = uuid.UUID(int=13)


@pytest.mark.slow
@pytest.mark.parametrize("handler_kind", ["async", "sync"])
async def test_a_late_report_does_not_repeat_a_transactional_effect(
    pgflow_database_url: str, handler_kind: str
) -> None:
    url = pgflow_database_url
    flow = Flow("late_report", timeout=3)
    recovered_execution_running = threading.Event()
    late_report_landed = threading.Event()

    if handler_kind == "async":

        @flow.step(transactional=True)
        async def book(run: Any, ctx: Context) -> str:
            await ctx.conn.execute("INSERT INTO effects VALUES (%s, 'recovered')", (ctx.run_id,))
            recovered_execution_running.set()
            await asyncio.to_thread(late_report_landed.wait, 30)
            return "recovered"

    else:

        @flow.step(transactional=True, slug="book")
        def book_sync(run: Any, ctx: Context) -> str:
            ctx.conn.execute("INSERT INTO effects VALUES (%s, 'recovered')", (ctx.run_id,))
            recovered_execution_running.set()
            late_report_landed.wait(30)
            return "recovered"

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE effects (run_id uuid, execution text)")
        await aensure_flow(conn, flow)
        run_id = await start_run(url, "late_report", {})
        # The first worker claims the task, then loses the database for a while.
        await conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) "
            "VALUES (%s, 'late_report', 'cut-off')",
            (CUT_OFF_WORKER,),
        )
        await conn.execute(
            "SELECT * FROM pgflow.start_tasks('late_report', "
            "ARRAY(SELECT msg_id FROM pgmq.read('late_report', 30, 1)), %s)",
            (CUT_OFF_WORKER,),
        )
        async with Worker(
            [flow], database_url=url, stalled_margin=0, recovery_interval=0.5, poll_interval=0.2
        ):
            assert await asyncio.to_thread(recovered_execution_running.wait, 30)
            # Its connection back, the first worker commits its effects with its completion,
            # as a transactional step does.
            async with conn.transaction():
                await conn.execute("INSERT INTO effects VALUES (%s, 'cut-off')", (run_id,))
                await conn.execute(
                    "SELECT pgflow.complete_task(%s, 'book', 0, %s)", (run_id, Jsonb("cut-off"))
                )
            late_report_landed.set()
            run = await wait_for_run(url, run_id)
    # The worker has stopped, so the recovered execution's transaction has ended too.
    assert run["status"] == "completed"
    assert rows(url, "SELECT execution FROM effects") == [{"execution": "cut-off"}]
