"""The workload of the reliability suite, importable by worker subprocesses
(``pgflow worker tests.reliability.flows``).

Every handler records each execution in ``reliability.executions`` (start, end, attempt, pid)
on a connection of its own, outside the task's transaction: that survives a crash of the
worker mid-task, and shows re-executions and overlapping executions of one task. The
transactional steps also write ``reliability.effects`` through ``ctx.conn``, in the transaction
that completes the task: one row per task is what "exactly-once effects" means.

The database comes from ``RELIABILITY_DATABASE_URL``. Expected outputs are pure functions of
the input, so the driver can check every run's output.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from pgflow import Context, Flow

URL_ENV = "RELIABILITY_DATABASE_URL"

#: Step timeouts are the smallest allowed, so a killed worker's tasks come back quickly.
TIMEOUT = 3
#: How long a handler works: long enough for kills to land mid-task now and then.
WORK_SECONDS = 0.005
#: How long a handler keeps retrying its own bookkeeping through a server restart.
RECORD_PATIENCE = 120.0

_pool_lock = threading.Lock()
_pool: ConnectionPool[Any] | None = None


def _bookkeeping_pool() -> ConnectionPool[Any]:
    """A small pool per worker process: the fleet must fit the server's connection limit."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ConnectionPool(
                os.environ[URL_ENV],
                min_size=1,
                max_size=2,
                kwargs={"autocommit": True},
                check=ConnectionPool.check_connection,
                name="reliability-bookkeeping",
            )
        return _pool


def _execute(query: str, params: tuple[Any, ...]) -> None:
    """Run one bookkeeping statement, retrying through server restarts. Statements are
    idempotent (keyed by a client-made id), so repeating one whose commit was lost is safe."""
    deadline = time.monotonic() + RECORD_PATIENCE
    while True:
        try:
            with _bookkeeping_pool().connection() as conn:
                conn.execute(query, params)
            return
        except (psycopg.OperationalError, PoolTimeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def begin_execution(ctx: Context) -> uuid.UUID:
    """Record that a handler starts for ``ctx``'s task; returns the execution id."""
    execution_id = uuid.uuid4()
    _execute(
        "INSERT INTO reliability.executions "
        "(execution_id, run_id, step_slug, task_index, attempt, pid, started) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            execution_id,
            ctx.run_id,
            ctx.step_slug,
            ctx.task_index,
            ctx.attempt,
            os.getpid(),
            time.time(),
        ),
    )
    return execution_id


def end_execution(execution_id: uuid.UUID, ended: float) -> None:
    _execute(
        "UPDATE reliability.executions SET ended = %s WHERE execution_id = %s",
        (ended, execution_id),
    )


def work(ctx: Context) -> None:
    """An execution of ``ctx``'s task, recorded from its start to the end of its work."""
    execution_id = begin_execution(ctx)
    try:
        time.sleep(WORK_SECONDS)
    finally:
        end_execution(execution_id, time.time())


class TransientError(Exception):
    """A failure that goes away on a later attempt."""


class PermanentError(Exception):
    """A failure that every attempt meets."""


# -- chain: three steps in a row ----------------------------------------------------------------
chain = Flow("rel_chain", timeout=TIMEOUT, max_attempts=5, base_delay=1)


@chain.step
def first(run: dict[str, int], ctx: Context) -> int:
    work(ctx)
    return run["n"] + 1


@chain.step(first)
def second(run: dict[str, int], value: int, ctx: Context) -> int:
    work(ctx)
    return value * 2


@chain.step(second)
def third(run: dict[str, int], value: int, ctx: Context) -> int:
    work(ctx)
    return value + 3


def chain_output(n: int) -> dict[str, Any]:
    return {"third": (n + 1) * 2 + 3}


# -- fanout: a map between a root and a fan-in --------------------------------------------------
fanout = Flow("rel_fanout", timeout=TIMEOUT, max_attempts=5, base_delay=1)

FANOUT_WIDTH = 3


@fanout.array
def split(run: dict[str, int], ctx: Context) -> list[int]:
    work(ctx)
    return [run["n"] + i for i in range(FANOUT_WIDTH)]


@fanout.map(split)
def square(item: int, ctx: Context) -> int:
    work(ctx)
    return item * item


@fanout.step(square)
def total(run: dict[str, int], squares: list[int], ctx: Context) -> int:
    work(ctx)
    return sum(squares)


def fanout_output(n: int) -> dict[str, Any]:
    return {"total": sum((n + i) ** 2 for i in range(FANOUT_WIDTH))}


# -- flaky: fails on its first attempts, then succeeds ------------------------------------------
flaky = Flow("rel_flaky", timeout=TIMEOUT, max_attempts=5, base_delay=1)

#: Attempts of a flaky task that fail by design (the next one succeeds).
FLAKY_FAILURES = 2


@flaky.step
def wobble(run: dict[str, int], ctx: Context) -> int:
    work(ctx)
    if ctx.attempt <= FLAKY_FAILURES:
        raise TransientError(f"attempt {ctx.attempt} fails by design")
    return run["n"]


def flaky_output(n: int) -> dict[str, Any]:
    return {"wobble": n}


# -- doomed: fails every attempt, so its runs fail ----------------------------------------------
doomed = Flow("rel_doomed", timeout=TIMEOUT, max_attempts=2, base_delay=1)


@doomed.step
def collapse(run: dict[str, int], ctx: Context) -> None:
    work(ctx)
    raise PermanentError("every attempt fails")


# -- ledger: transactional steps, one sync and one async ----------------------------------------
ledger = Flow("rel_ledger", timeout=TIMEOUT, max_attempts=5, base_delay=1)

_EFFECT = (
    "INSERT INTO reliability.effects (run_id, step_slug, task_index, attempt, pid) "
    "VALUES (%s, %s, %s, %s, %s)"
)


@ledger.step(transactional=True)
def debit(run: dict[str, int], ctx: Context) -> int:
    work(ctx)
    ctx.conn.execute(_EFFECT, (ctx.run_id, ctx.step_slug, ctx.task_index, ctx.attempt, os.getpid()))
    return run["n"]


@ledger.step(debit, transactional=True)
async def credit(run: dict[str, int], amount: int, ctx: Context) -> int:
    await asyncio.to_thread(work, ctx)
    await ctx.conn.execute(
        _EFFECT, (ctx.run_id, ctx.step_slug, ctx.task_index, ctx.attempt, os.getpid())
    )
    return amount * 10


def ledger_output(n: int) -> dict[str, Any]:
    return {"credit": n * 10}


# -- wide: one flow for the many-workers concurrency test ---------------------------------------
wide: Flow[list[int]] = Flow("rel_wide", timeout=10, max_attempts=1)

WIDE_WIDTH = 20
#: How long a wide task works: long enough that eight workers really run side by side.
WIDE_WORK_SECONDS = 0.02


@wide.map()
def crunch(item: int, ctx: Context) -> int:
    execution_id = begin_execution(ctx)
    try:
        time.sleep(WIDE_WORK_SECONDS)
    finally:
        end_execution(execution_id, time.time())
    return item + 1


@wide.step(crunch)
def gather(run: list[int], values: list[int], ctx: Context) -> int:
    work(ctx)
    return sum(values)


def wide_input(n: int) -> list[int]:
    return list(range(n, n + WIDE_WIDTH))


def wide_output(n: int) -> dict[str, Any]:
    return {"gather": sum(item + 1 for item in wide_input(n))}
