"""Our worker end to end: throughput of a 3-step chain with no-op handlers, and latency.

``python -m bench worker [--runs 10000] [--workers 2] [--latency-runs 200] [--database-url URL]
[--no-batch-completions]``

* throughput: ``--runs`` chains are started in bulk before ``--workers`` worker processes
  (``pgflow worker``) are released; tasks/s over the busy window, from the tables' own
  timestamps (first task started -> last task completed);
* latency: on an idle system, one chain at a time; start -> completed as the database records
  it (``runs.started_at`` -> ``runs.completed_at``) and as a client sees it (``start_flow_sync``
  returning), p50/p95/p99.

It creates and drops a database of its own on the server (default: the local PostgreSQL).
Mind the server's autovacuum setting: with it off, the queue tables bloat during the
throughput phase (the latency phase vacuums first).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgflow import AsyncClient, install

FLOWS = """
from typing import Any
from pgflow import Flow

chain = Flow("bench_chain")


@chain.step
async def a(run: Any) -> int:
    return 1


@chain.step(a)
async def b(run: Any, x: int) -> int:
    return x + 1


@chain.step(b)
async def c(run: Any, x: int) -> int:
    return x + 1
"""


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _spawn(
    url: str,
    module_dir: Path,
    count: int,
    max_concurrent: int = 10,
    batch_size: int = 10,
    target: str = "bench_flows:chain",
    worker_args: Sequence[str] = (),
    source: Path | None = None,
) -> list[subprocess.Popen[bytes]]:
    """``count`` ``pgflow worker`` processes on ``target``, a flow of a module in ``module_dir``,
    with ``worker_args`` as extra ``pgflow worker`` options; ``source``: the ``src`` directory
    of another tree whose ``pgflow`` they run instead of the installed one."""
    paths = [module_dir] if source is None else [module_dir, source]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pgflow",
                "worker",
                target,
                "-d",
                url,
                "--max-concurrent",
                str(max_concurrent),
                "--batch-size",
                str(batch_size),
                "--log-level",
                "warning",
                *worker_args,
            ],
            env=env,
            cwd=module_dir,
        )
        for _ in range(count)
    ]


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        proc.terminate()
    for proc in workers:
        proc.wait(60)


def wait_for_runs(
    url: str,
    flow_slug: str,
    timeout: float,
    workers: Sequence[subprocess.Popen[bytes]] = (),
    on_poll: Callable[[psycopg.Connection[Any]], None] | None = None,
    interval: float = 0.2,
) -> bool:
    """Wait until no run of ``flow_slug`` is still started.

    False when ``timeout`` seconds passed first or every one of ``workers`` has exited.
    ``on_poll`` is called with the polling connection every ``interval`` seconds.
    """
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            if on_poll is not None:
                on_poll(conn)
            left = conn.execute(
                "SELECT count(*) FROM pgflow.runs WHERE flow_slug = %s AND status = 'started'",
                (flow_slug,),
            ).fetchone()
            if left == (0,):
                return True
            if time.monotonic() > deadline or (
                workers and all(proc.poll() is not None for proc in workers)
            ):
                return False
            time.sleep(interval)


def throughput(
    url: str,
    module_dir: Path,
    runs: int,
    workers: int,
    max_concurrent: int,
    batch_size: int,
    worker_args: Sequence[str] = (),
) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT count(*) FROM unnest(%s::jsonb[]) AS i(input), "
            "LATERAL pgflow.start_flow('bench_chain', i.input)",
            (["{}"] * runs,),
        )
        # As autovacuum's auto-analyze would after so many new rows (this machine's server runs
        # with autovacuum off): with the statistics of empty tables, the planner takes the
        # flow_slug indexes of step_tasks as selective and every claim scans all of the flow's
        # tasks (a BitmapAnd over ~N index entries), which is not what a deployment sees.
        conn.execute("ANALYZE")
    procs = _spawn(url, module_dir, workers, max_concurrent, batch_size, worker_args=worker_args)
    try:
        wait_for_runs(url, "bench_chain", 600)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), "
                "extract(epoch FROM max(completed_at) - min(started_at)) "
                "FROM pgflow.step_tasks"
            ).fetchone()
    finally:
        _stop(procs)
    assert row is not None
    done, window = int(row[0]), float(row[1] or 0)
    return {
        "tasks": done,
        "busy_seconds": window,
        "tasks_per_second": done / window if window else 0,
    }


async def _latency(
    url: str,
    module_dir: Path,
    count: int,
    worker_args: Sequence[str] = (),
    source: Path | None = None,
) -> dict[str, list[float]]:
    procs = _spawn(url, module_dir, 1, worker_args=worker_args, source=source)
    try:
        async with AsyncClient(url) as client:
            await asyncio.sleep(1.5)  # the worker connects and listens
            db: list[float] = []
            seen: list[float] = []
            for _ in range(count):
                t0 = time.perf_counter()
                run = await client.start_flow_sync("bench_chain", {}, timeout=30)
                seen.append((time.perf_counter() - t0) * 1000)
                assert run.completed_at is not None
                db.append((run.completed_at - run.started_at).total_seconds() * 1000)
    finally:
        _stop(procs)
    return {"database": db, "client": seen}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench worker", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PGFLOW_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--max-concurrent", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument(
        "--no-batch-completions",
        action="store_true",
        help="workers report each task in its own transaction (to compare with batching)",
    )
    args = parser.parse_args(argv)
    worker_args = ["--no-batch-completions"] if args.no_batch_completions else []

    dbname = f"pgflow_bench_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = psycopg.conninfo.make_conninfo(args.database_url, dbname=dbname)
    try:
        install(url)
        with tempfile.TemporaryDirectory() as tmp:
            module_dir = Path(tmp)
            (module_dir / "bench_flows.py").write_text(FLOWS)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pgflow.create_flow('bench_chain')")
                for step, deps in (("a", []), ("b", ["a"]), ("c", ["b"])):
                    conn.execute(
                        "SELECT pgflow.add_step('bench_chain', %s, %s::text[])", (step, deps)
                    )
            result = throughput(
                url,
                module_dir,
                args.runs,
                args.workers,
                args.max_concurrent,
                args.batch_size,
                worker_args,
            )
            print(
                f"throughput: {args.runs} chains x 3 tasks, {args.workers} worker processes "
                f"(max_concurrent {args.max_concurrent}, batch {args.batch_size}, completions "
                f"{'one by one' if args.no_batch_completions else 'batched'}): "
                f"{result['tasks']:.0f} tasks in {result['busy_seconds']:.2f} s busy "
                f"-> {result['tasks_per_second']:,.0f} tasks/s"
            )
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pgflow.prune_runs(interval '0')")
                # This machine's server runs with autovacuum off: clean up by hand, as
                # autovacuum would, so that latency is not measured on a bloated queue.
                conn.execute("VACUUM ANALYZE")
            latency = (
                asyncio.run(_latency(url, module_dir, args.latency_runs, worker_args))
                if args.latency_runs > 0
                else {}
            )
            for name, values in latency.items():
                print(
                    f"latency ({name}, {len(values)} sequential chains, start -> completed): "
                    f"p50 {_pct(values, 50):.1f} ms, p95 {_pct(values, 95):.1f} ms, "
                    f"p99 {_pct(values, 99):.1f} ms"
                )
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
    return 0
