"""Running one task's handler: arguments from the task input, the timeout, the JSON output.

Async handlers run on the event loop and are cancelled at their timeout. Sync handlers run in
a thread pool; Python cannot stop a thread, so at the timeout the task is failed and the thread
is left to finish on its own (its result is then ignored).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow import sql as core_sql
from pgflow._json import json_problem
from pgflow._limits import oversize_problem
from pgflow.context import Context
from pgflow.dsl._flow import Step
from pgflow.dsl._handlers import to_json_value

log = logging.getLogger("pgflow.worker")

#: Longest error text stored for a failed task (the column is text; this keeps rows small).
MAX_ERROR_LENGTH = 4000


class TaskTimeoutError(Exception):
    """The handler ran longer than its step's effective timeout."""


class OutputError(Exception):
    """The handler returned something that is not JSON."""


@dataclass(frozen=True)
class Outcome:
    """What happened: an output to complete the task with, or an error text to fail it with."""

    output: Any = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def error_text(exc: BaseException) -> str:
    """``Type: message``, bounded in size, for ``fail_task``."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 15] + "… [truncated]"
    return text


def json_output(value: Any, model: Any = None) -> Any:
    """The handler's return value as a JSON value, exactly (0, false, "" and null included).

    A handler annotated to return a pydantic model has its output validated against it (a
    plain dict is accepted if it fits), so a malformed output fails the task, not its readers.
    """
    if model is not None and not isinstance(value, model):
        value = model.model_validate(value)
    converted = to_json_value(value)
    if (problem := json_problem(converted, "output")) is not None:
        raise OutputError(problem)
    text = json.dumps(converted, allow_nan=False)
    problem = oversize_problem(text, "output")
    if problem is not None:
        raise OutputError(problem)
    # Round-trip once so that tuples become lists and nothing non-JSON slips through.
    return json.loads(text)


def handler_values(step: Step[Any, Any], task_input: Any) -> list[Any]:
    """The positional values for the handler from the task input the SQL core assembled."""
    if step.step_type == "map":
        return [task_input]
    if not isinstance(task_input, dict):
        raise TypeError(f"task input of step {step.slug!r} is not an object: {task_input!r}")
    return [task_input.get("run"), *(task_input.get(dep) for dep in step.dependencies)]


async def execute(
    step: Step[Any, Any],
    task_input: Any,
    ctx: Context,
    *,
    timeout: float,
    executor: Executor | None,
) -> Outcome:
    """Run the handler of ``step`` for one task; never raises (except cancellation)."""
    call = step.call
    try:
        args, kwargs = call.arguments(handler_values(step, task_input), ctx)
        # asyncio.timeout, not wait_for: the handler runs inside this task instead of a task
        # of its own, which costs an idle worker two turns of the event loop per task.
        if call.is_async:
            async with asyncio.timeout(timeout):
                result = await call.fn(*args, **kwargs)
        else:
            loop = asyncio.get_running_loop()
            # Copy the context so contextvars (and log correlation) reach the thread.
            bound: Callable[[], Any] = functools.partial(
                contextvars.copy_context().run, call.fn, *args, **kwargs
            )
            async with asyncio.timeout(timeout):
                result = await loop.run_in_executor(executor, bound)
        return Outcome(output=json_output(result, call.return_model))
    except TimeoutError:
        kind = "cancelled" if call.is_async else "abandoned (its thread keeps running)"
        return Outcome(
            error=error_text(
                TaskTimeoutError(
                    f"step {step.slug!r} exceeded its timeout of {timeout:g} s and was {kind}"
                )
            )
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the handler's own failure, reported to the SQL core
        return Outcome(error=error_text(exc))


class _RolledBack(Exception):
    """Leaves a task's transaction without committing, carrying the failure to report."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


#: A transactional task that already committed its completion inside the handler's transaction.
COMMITTED = Outcome(output=None, error=None)

#: A transactional task whose transaction was rolled back with nothing to report: while it ran,
#: the task was recovered as stalled and claimed again (this worker had lost the database for
#: longer than the step's timeout plus the stalled margin). The other execution reports it.
SUPERSEDED = Outcome(output=None, error=None)

_SUPERSEDED_WARNING = (
    "task %s[%s] of run %s was recovered as stalled and taken over while this worker ran it "
    "(it lost the database for longer than the step timeout plus the stalled margin): its "
    "transaction is rolled back and its result discarded"
)


def _ownership_params(ctx: Context, key: dict[str, Any]) -> dict[str, Any]:
    return key | {"worker_id": ctx.worker_id, "attempt": ctx.attempt}


async def execute_in_transaction(
    step: Step[Any, Any],
    task_input: Any,
    ctx: Context,
    *,
    timeout: float,
    executor: Executor | None,
    async_connection: Any,
    sync_connection: Callable[[], Any],
    complete: tuple[str, dict[str, Any]],
) -> Outcome:
    """Run a ``transactional`` step: the handler gets ``ctx.conn`` in an open transaction, and
    ``complete_task`` runs in that same transaction, so the handler's writes and the task's
    completion commit together. Returns :data:`COMMITTED`, or the failure to report (after
    rolling back whatever the handler wrote), or :data:`SUPERSEDED`.

    Before completing, the transaction checks under the run's lock that the task is still the
    attempt this worker claimed: a late completion must not commit the handler's writes beside
    those of the execution that took the task over (complete_task alone would be a no-op for
    the task, yet the writes would commit)."""
    ownership = _ownership_params(ctx, complete[1])
    if step.call.is_async:
        for reconnects_left in range(STALE_CONNECTION_RETRIES, -1, -1):
            outcome = await _run_async_transaction(
                step, task_input, ctx, timeout, async_connection, complete, ownership
            )
            if outcome is not _STALE_CONNECTION:
                return outcome
            log.debug("stale pooled connection before the handler ran; %d left", reconnects_left)
        return Outcome(error="WorkerError: no live database connection for the transaction")
    return await _run_sync_transaction(
        step, task_input, ctx, timeout, executor, sync_connection, complete, ownership
    )


#: A pooled connection can be dead without the pool knowing (the server restarted while it sat
#: idle); that is found out at BEGIN, before the handler runs, and must not cost the task an
#: attempt: the transaction is retried on another connection, up to this many times.
STALE_CONNECTION_RETRIES = 20
#: The outcome of a transaction that could not even begin.
_STALE_CONNECTION = Outcome(error="stale connection")


async def _run_async_transaction(
    step: Step[Any, Any],
    task_input: Any,
    ctx: Context,
    timeout: float,
    async_connection: Any,
    complete: tuple[str, dict[str, Any]],
    ownership: dict[str, Any],
) -> Outcome:
    from psycopg.types.json import Jsonb

    query, params = complete
    lock_run, task_held = core_sql.query("worker_lock_run"), core_sql.query("worker_task_held")
    began = False
    try:
        async with async_connection() as conn, conn.transaction():
            began = True
            ctx.conn = conn
            outcome = await execute(step, task_input, ctx, timeout=timeout, executor=None)
            if outcome.failed:
                raise _RolledBack(outcome)  # noqa: TRY301 - leaves the transaction block
            await conn.execute(lock_run, params)
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(task_held, ownership)
                held = await cur.fetchone()
            if not (held and held["held"]):
                log.warning(_SUPERSEDED_WARNING, ctx.step_slug, ctx.task_index, ctx.run_id)
                raise _RolledBack(SUPERSEDED)  # noqa: TRY301 - leaves the transaction block
            await conn.execute(query, params | {"output": Jsonb(outcome.output)})
    except _RolledBack as rolled_back:
        return rolled_back.outcome
    except psycopg.OperationalError as exc:
        return _STALE_CONNECTION if not began else Outcome(error=error_text(exc))
    except Exception as exc:  # the transaction failed (a handler's SQL error, say)
        return Outcome(error=error_text(exc))
    finally:
        ctx.conn = None
    return COMMITTED


async def _run_sync_transaction(
    step: Step[Any, Any],
    task_input: Any,
    ctx: Context,
    timeout: float,
    executor: Executor | None,
    sync_connection: Callable[[], Any],
    complete: tuple[str, dict[str, Any]],
    ownership: dict[str, Any],
) -> Outcome:
    """All of it in the handler's thread, on a sync connection. At the timeout the task is
    failed and the thread may still be running: whoever takes `decided` first wins, so the
    thread never commits a completion after the task was failed."""
    import threading

    from psycopg.types.json import Jsonb

    query, params = complete
    lock_run, task_held = core_sql.query("worker_lock_run"), core_sql.query("worker_task_held")
    decided = threading.Lock()

    def work() -> Outcome:
        for _ in range(STALE_CONNECTION_RETRIES + 1):
            result = attempt()
            if result is not _STALE_CONNECTION:
                return result
        return Outcome(error="WorkerError: no live database connection for the transaction")

    def attempt() -> Outcome:
        result = COMMITTED
        began = False
        with sync_connection() as conn:
            try:
                with conn.transaction():
                    began = True
                    ctx.conn = conn
                    args, kwargs = step.call.arguments(handler_values(step, task_input), ctx)
                    output = json_output(step.call.fn(*args, **kwargs), step.call.return_model)
                    if not decided.acquire(blocking=False):
                        raise psycopg.Rollback()  # failed at the timeout meanwhile
                    conn.execute(lock_run, params)
                    with conn.cursor(row_factory=dict_row) as cur:
                        held = cur.execute(task_held, ownership).fetchone()
                    if not (held and held["held"]):
                        log.warning(_SUPERSEDED_WARNING, ctx.step_slug, ctx.task_index, ctx.run_id)
                        result = SUPERSEDED
                        raise psycopg.Rollback()
                    conn.execute(query, params | {"output": Jsonb(output)})
            except psycopg.OperationalError:
                if began:
                    raise
                return _STALE_CONNECTION
            finally:
                ctx.conn = None
        return result

    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(executor, contextvars.copy_context().run, work)
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        if decided.acquire(blocking=False):
            return Outcome(
                error=error_text(
                    TaskTimeoutError(
                        f"step {step.slug!r} exceeded its timeout of {timeout:g} s and was "
                        "abandoned (its thread keeps running; its transaction is rolled back)"
                    )
                )
            )
        try:  # the thread is committing right now: its outcome stands
            return await future
        except Exception as exc:
            return Outcome(error=error_text(exc))
    except Exception as exc:
        return Outcome(error=error_text(exc))
