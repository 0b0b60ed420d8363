"""What the clients do, once: each operation yields its statements (see :mod:`pgflow._ops`)
and turns rows into typed objects. ``Client`` and ``AsyncClient`` only execute them."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pgflow import sql as core_sql
from pgflow._json import json_problem
from pgflow._limits import oversize_problem
from pgflow._ops import Operation
from pgflow.client._models import (
    RUN_STATUSES,
    HealthReport,
    KeysetPosition,
    PruneResult,
    Run,
    RunPage,
    RunWithStates,
    StepState,
    TaskState,
    decode_cursor,
    encode_cursor,
)
from pgflow.dsl._definition import FlowDefinition, definition_of
from pgflow.dsl._flow import Flow
from pgflow.dsl._handlers import to_json_value
from pgflow.dsl._job import Job
from pgflow.dsl._rules import slug_problem
from pgflow.errors import (
    FlowNotFoundError,
    InvalidInputError,
    RunNotFoundError,
    RunStateError,
    StepOutputUnavailableError,
)
from pgflow.events import RunEvent
from pgflow.installer import compare_with_shipped

FlowRef = Flow[Any] | Job[Any, Any] | FlowDefinition | str
KeyedRun = TypeVar("KeyedRun", bound=KeysetPosition)

#: A run without its input and output, with the error of the step that failed it.
RUN_SUMMARY_COLUMNS = """
    r.run_id, r.flow_slug, r.status, r.remaining_steps,
    r.started_at, r.completed_at, r.failed_at,
    (SELECT ss.error_message FROM pgflow.step_states AS ss
     WHERE ss.run_id = r.run_id AND ss.status = 'failed'
     ORDER BY ss.failed_at LIMIT 1) AS error_message
"""
#: The run-control columns (migration 0005) as one JSON value, which a core without them (an
#: upstream 0.8.1 one) answers too: they are then absent.
_RUN_CONTROL_COLUMNS = ", to_jsonb(r) - 'input' - 'output' AS run_control"
RUN_SUMMARY_WITH_CONTROL_COLUMNS = RUN_SUMMARY_COLUMNS + _RUN_CONTROL_COLUMNS
_RUN_COLUMNS = "r.input, r.output, " + RUN_SUMMARY_WITH_CONTROL_COLUMNS

MAX_PAGE = 1000


def flow_slug(flow: FlowRef) -> str:
    if isinstance(flow, str):
        return flow
    return definition_of(flow).slug


def prepare_input(flow: FlowRef, payload: Any) -> Jsonb:
    """The run input as JSON, checked before anything is written."""
    slug = flow_slug(flow)
    # No flow can have an invalid slug; saying so here also spares the driver a NUL it refuses.
    if (slug_issue := slug_problem(slug)) is not None:
        raise FlowNotFoundError(f"flow {slug!r} does not exist: {slug_issue}")
    input_type = flow.input_type if isinstance(flow, Flow) else None
    if input_type is not None and hasattr(input_type, "model_validate"):
        try:  # a pydantic flow input: the run starts only with input the handlers accept
            payload = input_type.model_validate(payload)
        except ValueError as exc:
            raise InvalidInputError(f"input of flow {slug!r} is invalid: {exc}") from None
    value = to_json_value(payload)
    if (problem := json_problem(value, "input")) is not None:
        raise InvalidInputError(f"input of flow {slug!r} is not JSON-serialisable: {problem}")
    text = json.dumps(value, allow_nan=False)
    problem = oversize_problem(text, f"input of flow {slug!r}")
    if problem is not None:
        raise InvalidInputError(problem)
    if not isinstance(flow, str):
        definition = definition_of(flow)
        root_maps = [
            s.slug for s in definition.steps if s.step_type == "map" and not s.dependencies
        ]
        if root_maps and not isinstance(value, list):
            raise InvalidInputError(
                f"flow {slug!r} has root map steps ({', '.join(root_maps)}), so its input must "
                f"be an array, got {type(value).__name__}"
            )
    return Jsonb(value)


def _start_error(slug: str, exc: psycopg.Error) -> Exception:
    primary = exc.diag.message_primary or str(exc)
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return FlowNotFoundError(f"flow {slug!r} does not exist (define it, or run ensure_flow)")
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return InvalidInputError(f"a run with this run_id exists already ({primary})")
    if isinstance(exc, psycopg.errors.RaiseException):
        return InvalidInputError(primary)
    return exc


def _delay_statement(slug: str, run_ids: list[uuid.UUID], visible_at: Any) -> tuple[Any, Any]:
    """Hide a new run's first messages until ``visible_at`` (a timestamp or a delay)."""
    table = sql.Identifier(f"q_{slug.lower()}")
    if isinstance(visible_at, datetime):
        when = sql.SQL("%(at)s::timestamptz")
        params: dict[str, Any] = {"at": visible_at}
    else:
        when = sql.SQL("clock_timestamp() + make_interval(secs => %(delay)s)")
        params = {"delay": float(visible_at)}
    statement = sql.SQL(
        "UPDATE pgmq.{table} SET vt = greatest(vt, {when}) WHERE msg_id IN ("
        "SELECT t.message_id FROM pgflow.step_tasks AS t "
        "WHERE t.run_id = ANY(%(run_ids)s) AND t.status = 'queued')"
    ).format(table=table, when=when)
    return statement, {**params, "run_ids": run_ids}


def start_flows(
    slug: str,
    inputs: Sequence[Jsonb],
    run_ids: Sequence[uuid.UUID | None],
    *,
    visible_at: datetime | float | None = None,
) -> Operation[list[Run]]:
    """Start one run per input in one round trip, in input order. With ``visible_at``, no
    worker can see the runs' tasks before then (set in the same transaction as the start)."""
    try:
        rows = yield (
            """
            SELECT s.*, NULL::text AS error_message
            FROM unnest(%s::jsonb[], %s::uuid[]) WITH ORDINALITY AS i(input, run_id, n)
            CROSS JOIN LATERAL pgflow.start_flow(%s, i.input, i.run_id) AS s
            ORDER BY i.n
            """,
            (list(inputs), list(run_ids), slug),
        )
    except psycopg.Error as exc:
        raise _start_error(slug, exc) from None
    runs = [Run.from_row(row) for row in rows]
    if visible_at is not None and runs:
        yield _delay_statement(slug, [r.run_id for r in runs], visible_at)
    return runs


def get_run(run_id: uuid.UUID) -> Operation[Run]:
    rows = yield f"SELECT {_RUN_COLUMNS} FROM pgflow.runs AS r WHERE r.run_id = %s", (run_id,)
    if not rows:
        raise RunNotFoundError(f"run {run_id} does not exist")
    return Run.from_row(rows[0])


def _run_control(function: str, *args: Any) -> Operation[Run]:
    """Call one of the run-control functions (cancel_run, retry_run, resume_run), turning
    its refusals into typed errors; nothing has changed when it refuses."""
    placeholders = ", ".join(["%s"] * len(args))
    try:
        rows = yield f"SELECT r.* FROM pgflow.{function}({placeholders}) AS r", args
    except psycopg.errors.NoDataFound as exc:
        raise RunNotFoundError(exc.diag.message_primary or str(exc)) from None
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise RunStateError(exc.diag.message_primary or str(exc)) from None
    except psycopg.errors.UndefinedFunction:
        raise RunStateError(
            f"this database's pgflow core has no {function}: run `pgflow install` to add it"
        ) from None
    return Run.from_row(rows[0])


def cancel_run(run_id: uuid.UUID, reason: str | None = None) -> Operation[Run]:
    """Cancel a started run: it ends 'cancelled' with ``reason``, its pending work is dropped
    and workers running its tasks are told (``ctx.cancelled``)."""
    return (yield from _run_control("cancel_run", run_id, reason))


def retry_run(run_id: uuid.UUID) -> Operation[Run]:
    """A new run of a failed or cancelled run's flow and input (``retry_of`` links them)."""
    return (yield from _run_control("retry_run", run_id))


def resume_run(run_id: uuid.UUID) -> Operation[Run]:
    """Continue a failed or cancelled run: completed steps are kept, the others run again."""
    return (yield from _run_control("resume_run", run_id))


def get_run_with_states(run_id: uuid.UUID) -> Operation[RunWithStates]:
    run = yield from get_run(run_id)
    steps = yield (
        """
        SELECT ss.*, s.step_type, s.step_index
        FROM pgflow.step_states AS ss
        JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
        WHERE ss.run_id = %s ORDER BY s.step_index
        """,
        (run_id,),
    )
    tasks = yield (
        """
        SELECT t.* FROM pgflow.step_tasks AS t
        JOIN pgflow.steps AS s ON s.flow_slug = t.flow_slug AND s.step_slug = t.step_slug
        WHERE t.run_id = %s ORDER BY s.step_index, t.task_index
        """,
        (run_id,),
    )
    return RunWithStates(
        run,
        tuple(StepState.from_row(r) for r in steps),
        tuple(TaskState.from_row(r) for r in tasks),
    )


def get_step_output(run_id: uuid.UUID, step_slug: str) -> Operation[Any]:
    rows = yield (
        """
        SELECT ss.status, s.step_type,
               CASE WHEN s.step_type = 'map' THEN coalesce((
                        SELECT jsonb_agg(t.output ORDER BY t.task_index)
                        FROM pgflow.step_tasks AS t
                        WHERE t.run_id = ss.run_id AND t.step_slug = ss.step_slug
                          AND t.status = 'completed'), '[]'::jsonb)
                    ELSE (SELECT t.output FROM pgflow.step_tasks AS t
                          WHERE t.run_id = ss.run_id AND t.step_slug = ss.step_slug
                            AND t.status = 'completed' LIMIT 1)
               END AS output
        FROM pgflow.step_states AS ss
        JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
        WHERE ss.run_id = %s AND ss.step_slug = %s
        """,
        (run_id, step_slug),
    )
    if not rows:
        raise StepOutputUnavailableError(f"run {run_id} has no step {step_slug!r}")
    if rows[0]["status"] != "completed":
        raise StepOutputUnavailableError(
            f"step {step_slug!r} of run {run_id} is {rows[0]['status']}: it has no output yet"
        )
    return rows[0]["output"]


def get_flow_input(run_id: uuid.UUID) -> Operation[Any]:
    rows = yield "SELECT input FROM pgflow.runs WHERE run_id = %s", (run_id,)
    if not rows:
        raise RunNotFoundError(f"run {run_id} does not exist")
    return rows[0]["input"]


def list_runs(
    *,
    flow: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Operation[RunPage]:
    """Newest first, keyset-paginated (see :func:`runs_page`)."""
    runs, next_cursor = yield from runs_page(
        _RUN_COLUMNS,
        Run.from_row,
        flow=flow,
        status=status,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return RunPage(runs, next_cursor)


def runs_page(
    columns: str,
    convert: Callable[[dict[str, Any]], KeyedRun],
    *,
    flow: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> Operation[tuple[tuple[KeyedRun, ...], str | None]]:
    """One page of runs (``columns`` of ``pgflow.runs AS r``, each row made into a run view
    by ``convert``) and the cursor of the next page, if any.

    Newest first, keyset-paginated on (started_at, run_id): every page is an index range scan
    (``idx_runs_started_at``, ``idx_runs_flow_started_at`` and, with a status, the indexes of
    migration 0004), however deep the page.
    """
    if status is not None and status not in RUN_STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if flow is not None and (problem := slug_problem(flow)) is not None:
        # Also keeps what the server cannot take (a NUL character) out of the statement.
        raise InvalidInputError(f"flow filter {flow!r} is not a flow slug: {problem}")
    conditions: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if flow is not None:
        conditions.append(sql.SQL("r.flow_slug = %(flow)s"))
        params["flow"] = flow
    if status is not None:
        conditions.append(sql.SQL("r.status = %(status)s"))
        params["status"] = status
    if since is not None:
        conditions.append(sql.SQL("r.started_at >= %(since)s"))
        params["since"] = since
    if until is not None:
        conditions.append(sql.SQL("r.started_at < %(until)s"))
        params["until"] = until
    if cursor is not None:
        params["c_at"], params["c_id"] = decode_cursor(cursor)
        conditions.append(sql.SQL("(r.started_at, r.run_id) < (%(c_at)s, %(c_id)s)"))
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    statement = sql.SQL(
        "SELECT {columns} FROM pgflow.runs AS r WHERE {where} "
        "ORDER BY r.started_at DESC, r.run_id DESC LIMIT %(limit)s"
    ).format(columns=sql.SQL(columns), where=where)
    rows = yield statement, params
    runs = tuple(convert(r) for r in rows[:limit])
    more = len(rows) > limit
    return runs, encode_cursor(runs[-1]) if more and runs else None


def prune(older_than: timedelta, flows: Sequence[str] | None = None) -> Operation[PruneResult]:
    if older_than < timedelta(0):
        raise InvalidInputError(f"older_than must not be negative, got {older_than}")
    rows = yield (
        "SELECT * FROM pgflow.prune_runs(%s, %s)",
        (older_than, list(flows) if flows is not None else None),
    )
    return PruneResult(**{k: int(v) for k, v in rows[0].items()})


def recover_stalled_tasks(
    margin: float = 30.0, max_requeues: int = 3
) -> Operation[list[dict[str, Any]]]:
    rows = yield (
        core_sql.query("worker_recover_stalled"),
        {"margin": margin, "max_requeues": max_requeues},
    )
    return rows


#: A worker is live when it sent a heartbeat this recently (it beats every 5 s).
LIVE_WORKER_SECONDS = 30


def health_check() -> Operation[HealthReport]:
    """Schema version, pgmq, live workers and queue depths per flow, in one read."""
    meta = yield (
        """
        SELECT current_setting('server_version') AS server_version,
               to_regclass('pgflow.schema_migrations') IS NOT NULL AS has_bookkeeping,
               (SELECT extversion FROM pg_extension WHERE extname = 'pgmq') AS pgmq_extension,
               to_regclass('pgmq.meta') IS NOT NULL AS has_pgmq
        """,
        None,
    )
    info = meta[0]
    problems: list[str] = []
    recorded: dict[str, str] = {}
    if info["has_bookkeeping"]:
        rows = yield "SELECT name, checksum FROM pgflow.schema_migrations", None
        recorded = {r["name"]: r["checksum"] for r in rows}
    applied, pending, functions_current = compare_with_shipped(recorded)
    if not info["has_pgmq"]:
        problems.append("pgmq is not installed")
    if pending or not functions_current:
        problems.append("the pgflow schema is not up to date: run `pgflow install`")
    live: dict[str, int] = {}
    depths: dict[str, int] = {}
    ages: dict[str, float] = {}
    if not pending and info["has_pgmq"]:
        rows = yield (
            """
            SELECT f.flow_slug,
                   (SELECT count(*) FROM pgflow.workers AS w
                    WHERE w.queue_name = f.flow_slug AND w.deprecated_at IS NULL
                      AND w.last_heartbeat_at > now() - make_interval(secs => %s)) AS live
            FROM pgflow.flows AS f ORDER BY f.flow_slug
            """,
            (LIVE_WORKER_SECONDS,),
        )
        live = {r["flow_slug"]: int(r["live"]) for r in rows}
        rows = yield (
            """
            SELECT m.queue_name, m.queue_length, m.oldest_msg_age_sec
            FROM pgmq.metrics_all() AS m
            JOIN pgflow.flows AS f ON f.flow_slug = m.queue_name
            """,
            None,
        )
        depths = {r["queue_name"]: int(r["queue_length"]) for r in rows}
        ages = {
            r["queue_name"]: float(r["oldest_msg_age_sec"] or 0)
            for r in rows
            if r["oldest_msg_age_sec"] is not None and math.isfinite(float(r["oldest_msg_age_sec"]))
        }
        for slug, depth in depths.items():
            if depth and not live.get(slug):
                problems.append(f"flow {slug!r} has {depth} queued message(s) and no live worker")
    return HealthReport(
        database=True,
        server_version=info["server_version"],
        schema_up_to_date=not pending and functions_current,
        applied_migrations=applied,
        pending_migrations=pending,
        pgmq_version=info["pgmq_extension"] or ("installed from SQL" if info["has_pgmq"] else None),
        live_workers=live,
        queue_depths=depths,
        oldest_message_age=ages,
        problems=tuple(problems),
    )


def past_events(run_id: uuid.UUID) -> Operation[list[RunEvent]]:
    """The run's events so far, rebuilt from the tables' timestamps, in order: what a
    subscriber that arrived late has missed."""
    rows = yield (
        """
        SELECT e.event_type, e.step_slug, e.status, r.flow_slug
        FROM pgflow.runs AS r
        CROSS JOIN LATERAL (
            SELECT (to_jsonb(r) ->> 'cancelled_at')::timestamptz AS cancelled_at
        ) AS c
        CROSS JOIN LATERAL (
            -- Within one timestamp (one transaction), a step's completion precedes the start
            -- of the steps after it, and its own start precedes its completion.
            SELECT 'run:started' AS event_type, NULL::text AS step_slug, 'started' AS status,
                   r.started_at AS at, -1 AS step_index, 0 AS phase
            UNION ALL
            SELECT 'step:started', ss.step_slug, 'started', ss.started_at, s.step_index, 0
            FROM pgflow.step_states AS ss
            JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
            WHERE ss.run_id = r.run_id AND ss.started_at IS NOT NULL
            UNION ALL
            -- A cancelled step ends when its run was cancelled (read as JSON: an upstream
            -- core has no such column, nor cancelled runs); likewise skipped_at, which a
            -- core without conditional steps lacks.
            SELECT 'step:' || ss.status, ss.step_slug, ss.status,
                   coalesce(ss.completed_at, ss.failed_at,
                            (to_jsonb(ss) ->> 'skipped_at')::timestamptz, c.cancelled_at),
                   s.step_index, 1
            FROM pgflow.step_states AS ss
            JOIN pgflow.steps AS s ON s.flow_slug = ss.flow_slug AND s.step_slug = ss.step_slug
            WHERE ss.run_id = r.run_id
              AND ss.status IN ('completed', 'failed', 'skipped', 'cancelled')
            UNION ALL
            SELECT 'run:' || r.status, NULL, r.status,
                   coalesce(r.completed_at, r.failed_at, c.cancelled_at), 2147483647, 2
            WHERE r.status IN ('completed', 'failed', 'cancelled')
        ) AS e
        WHERE r.run_id = %s
        ORDER BY e.at, e.step_index, e.phase
        """,
        (run_id,),
    )
    if not rows:
        raise RunNotFoundError(f"run {run_id} does not exist")
    return [
        RunEvent(r["event_type"], run_id, r["flow_slug"], r["step_slug"], r["status"]) for r in rows
    ]
