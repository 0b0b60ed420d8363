"""Procrastinate through its public API (psycopg connector, its own worker): see ``_driver.py``.

The consumer is Procrastinate's worker with ``wait=False`` (it exits once it has caught up with
the queue), ``concurrency`` jobs at once, Procrastinate's defaults otherwise (jobs are kept).
"""

from __future__ import annotations

import argparse
from typing import Any

import _driver
import procrastinate
import psycopg
from procrastinate import App, PsycopgConnector

QUEUE = "bench"
#: Jobs run by this process (the task below counts them).
_done = 0


def _app(url: str) -> App:
    app = App(connector=PsycopgConnector(conninfo=url))

    @app.task(name=_driver.JOB_NAME, queue=QUEUE)
    async def bench_job(n: int) -> None:
        global _done
        _done += 1

    return app


async def install(args: argparse.Namespace) -> dict[str, Any]:
    app = _app(args.url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
    return {"version": procrastinate.__version__}


async def reset(args: argparse.Namespace) -> dict[str, Any]:
    # Procrastinate has no public call that empties its tables; its jobs, their events and the
    # worker registry are plain tables of its schema.
    async with await psycopg.AsyncConnection.connect(args.url, autocommit=True) as conn:
        await conn.execute(
            "TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
            "procrastinate_workers RESTART IDENTITY"
        )
    return {}


async def enqueue(args: argparse.Namespace) -> dict[str, Any]:
    app = _app(args.url)
    async with app.open_async():
        task = app.tasks[_driver.JOB_NAME]
        for part in _driver.chunks(args.count):
            await task.batch_defer_async(*({"n": n} for n in part))
    return {"enqueued": args.count}


async def consume(args: argparse.Namespace) -> dict[str, Any]:
    app = _app(args.url)
    async with app.open_async():
        await app.run_worker_async(queues=[QUEUE], wait=False, concurrency=args.concurrency)
    return {"done": _done}


async def stats(args: argparse.Namespace) -> dict[str, Any]:
    # Procrastinate records every job transition with its time in procrastinate_events.
    async with await psycopg.AsyncConnection.connect(args.url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FILTER (WHERE type = 'succeeded'), "
            "extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded') "
            "- min(at) FILTER (WHERE type = 'started'))::float8 FROM procrastinate_events"
        )
        completed, busy = await cursor.fetchone() or (0, None)
        cursor = await conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )
        (left,) = await cursor.fetchone() or (0,)
    return {"completed": completed, "busy_seconds": busy or 0.0, "left": left}


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
