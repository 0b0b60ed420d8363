"""PgQueuer through its public API, with its fastest driver (asyncpg): see ``_driver.py``.

The consumer is PgQueuer's ``QueueManager.run`` in drain mode (it exits once the queue is empty
and its in-flight jobs are done), with PgQueuer's own defaults otherwise. Tables are installed
at PgQueuer's default durability (``durable``: every table logged).
"""

from __future__ import annotations

import argparse
from typing import Any

import _driver
import asyncpg
import pgqueuer
from pgqueuer import Job, Queries, QueueManager
from pgqueuer.types import QueueExecutionMode


async def _with_queries(url: str, action: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await action(Queries.from_asyncpg_connection(conn), conn)
    finally:
        await conn.close()


async def install(args: argparse.Namespace) -> dict[str, Any]:
    async def action(queries: Queries, conn: Any) -> dict[str, Any]:
        await queries.install()
        return {"version": pgqueuer.__version__}

    return await _with_queries(args.url, action)


async def reset(args: argparse.Namespace) -> dict[str, Any]:
    async def action(queries: Queries, conn: Any) -> dict[str, Any]:
        await queries.clear_queue()
        await queries.clear_queue_log()
        await queries.clear_statistics_log()
        return {}

    return await _with_queries(args.url, action)


async def enqueue(args: argparse.Namespace) -> dict[str, Any]:
    async def action(queries: Queries, conn: Any) -> dict[str, Any]:
        for part in _driver.chunks(args.count):
            await queries.enqueue(
                [_driver.JOB_NAME] * len(part),
                [str(n).encode() for n in part],
                [0] * len(part),
            )
        return {"enqueued": args.count}

    return await _with_queries(args.url, action)


async def consume(args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(args.url)
    manager = QueueManager(Queries.from_asyncpg_connection(conn))
    done = 0

    @manager.entrypoint(_driver.JOB_NAME)
    async def bench_job(job: Job) -> None:
        nonlocal done
        done += 1

    try:
        await manager.run(mode=QueueExecutionMode.drain, batch_size=args.batch_size)
    finally:
        await conn.close()
    return {"done": done}


async def stats(args: argparse.Namespace) -> dict[str, Any]:
    # PgQueuer logs every status change with its time in pgqueuer_log: 'picked' when a
    # consumer claims the job, 'successful' when its completion is written.
    async def action(queries: Queries, conn: Any) -> dict[str, Any]:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'successful') AS completed, "
            "extract(epoch FROM max(created) FILTER (WHERE status = 'successful') "
            "- min(created) FILTER (WHERE status = 'picked'))::float8 AS busy "
            "FROM pgqueuer_log WHERE entrypoint = $1",
            _driver.JOB_NAME,
        )
        left = await conn.fetchval("SELECT count(*) FROM pgqueuer")
        return {"completed": row["completed"], "busy_seconds": row["busy"] or 0.0, "left": left}

    return await _with_queries(args.url, action)


if __name__ == "__main__":
    _driver.main(
        __doc__.splitlines()[0],
        {
            "install": install,
            "reset": reset,
            "enqueue": enqueue,
            "consume": consume,
            "stats": stats,
        },
    )
