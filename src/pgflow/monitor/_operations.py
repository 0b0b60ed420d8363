"""What the monitors do, once: sans-IO operations (see :mod:`pgflow._ops`) over the pgflow
tables and the flows' pgmq queues. ``Monitor`` and ``AsyncMonitor`` only execute them."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from psycopg import sql

from pgflow import sql as core_sql
from pgflow._ops import Operation
from pgflow.client import _operations as client_ops
from pgflow.client._models import PruneResult
from pgflow.errors import FlowNotFoundError, InvalidInputError
from pgflow.monitor._models import (
    BusyHour,
    DurationStats,
    FailureReason,
    FlowInfo,
    FlowStepInfo,
    Metrics,
    QueueInfo,
    RunStatus,
    RunStatusPage,
    RunSummary,
    StepDurations,
    StepStatus,
    TaskStatus,
    WorkerInfo,
)

DEFAULT_WINDOW = timedelta(hours=24)
MAX_TOP = 1000
#: Sorting a week of durations for exact percentiles fits in memory with this, not with the
#: server's default of 4 MB; set for the metrics transaction only.
_METRICS_WORK_MEM = "64MB"


def get_status(run_id: uuid.UUID, *, include_tasks: bool = False) -> Operation[RunStatus]:
    run = yield from client_ops.get_run(run_id)
    steps = yield core_sql.query("monitor_run_steps"), {"run_id": run_id}
    tasks = None
    if include_tasks:
        rows = yield core_sql.query("monitor_run_tasks"), {"run_id": run_id}
        tasks = tuple(TaskStatus.from_row(r) for r in rows)
    return RunStatus(
        run_id=run.run_id,
        flow_slug=run.flow_slug,
        status=run.status,
        input=run.input,
        output=run.output,
        error=run.error_message,
        started_at=run.started_at,
        completed_at=run.completed_at,
        failed_at=run.failed_at,
        duration=run.duration,
        remaining_steps=run.remaining_steps,
        steps=tuple(StepStatus.from_row(r) for r in steps),
        tasks=tasks,
        cancelled_at=run.cancelled_at,
        cancel_reason=run.cancel_reason,
        retry_of=run.retry_of,
        resumed_count=run.resumed_count,
        resumed_at=run.resumed_at,
    )


def list_runs(
    *,
    status: str | None = None,
    flow: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Operation[RunStatusPage]:
    """Runs started in ``[since, until)``, newest first, keyset-paginated like the client's."""
    runs, next_cursor = yield from client_ops.runs_page(
        client_ops.RUN_SUMMARY_WITH_CONTROL_COLUMNS,
        RunSummary.from_row,
        flow=flow,
        status=status,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return RunStatusPage(runs, next_cursor)


def history(*, limit: int = 50, since: datetime | None = None) -> Operation[list[RunSummary]]:
    """Finished runs (completed, failed or cancelled), the most recently finished first; with
    ``since``, only those that finished at or after it."""
    _check_limit(limit, client_ops.MAX_PAGE, "limit")
    rows = yield (
        core_sql.query("monitor_history"),
        {"since": since if since is not None else "-infinity", "limit": limit},
    )
    return [RunSummary.from_row(r) for r in rows]


def cleanup_older_than(*, days: float) -> Operation[PruneResult]:
    """Delete runs that finished more than ``days`` ago, with their states, tasks and archived
    messages, and workers silent since then (``pgflow.prune_runs``)."""
    if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days):
        raise InvalidInputError(f"days must be a finite number, got {days!r}")
    if days < 0:
        raise InvalidInputError(f"days must not be negative, got {days}")
    return (yield from client_ops.prune(timedelta(days=days)))


def workers(*, include_stopped: bool = False) -> Operation[list[WorkerInfo]]:
    """Live workers (a heartbeat within ``LIVE_WORKER_SECONDS``, not deprecated or stopped);
    with ``include_stopped``, every registered worker with its status."""
    rows = yield (
        core_sql.query("monitor_workers"),
        {"live_seconds": client_ops.LIVE_WORKER_SECONDS},
    )
    found = [WorkerInfo(**r) for r in rows]
    return found if include_stopped else [w for w in found if w.status == "alive"]


def queues(flows: Sequence[str] | None = None) -> Operation[list[QueueInfo]]:
    """Per flow (all, or those named), its queue's depth, the messages visible now and the
    age of the oldest message. Flows whose queue table is missing are left out."""
    rows = yield (
        """
        SELECT f.flow_slug, pgmq.format_table_name(f.flow_slug, 'q') AS queue_table
        FROM pgflow.flows AS f
        WHERE (%(flows)s::text[] IS NULL OR f.flow_slug = ANY (%(flows)s::text[]))
          AND to_regclass(format('pgmq.%%I', pgmq.format_table_name(f.flow_slug, 'q')))
              IS NOT NULL
        ORDER BY f.flow_slug
        """,
        {"flows": list(flows) if flows is not None else None},
    )
    if not rows:
        return []
    per_queue = [
        sql.SQL(
            "SELECT {slug}::text AS flow_slug, count(*) AS depth, "
            "count(*) FILTER (WHERE q.vt <= now()) AS visible, "
            "extract(epoch FROM now() - min(q.enqueued_at))::float8 AS oldest_message_age "
            "FROM pgmq.{table} AS q"
        ).format(slug=sql.Literal(r["flow_slug"]), table=sql.Identifier(r["queue_table"]))
        for r in rows
    ]
    counted = yield sql.SQL(" UNION ALL ").join(per_queue), None
    return [QueueInfo(**r) for r in counted]


def flows() -> Operation[list[FlowInfo]]:
    rows = yield core_sql.query("monitor_flows"), None
    return [
        FlowInfo(
            flow_slug=r["flow_slug"],
            options={
                "max_attempts": r["opt_max_attempts"],
                "base_delay": r["opt_base_delay"],
                "timeout": r["opt_timeout"],
            },
            created_at=r["created_at"],
            steps=tuple(
                FlowStepInfo(
                    step_slug=s["step_slug"],
                    step_type=s["step_type"],
                    step_index=s["step_index"],
                    deps=tuple(s["deps"]),
                    options={
                        option: s[option]
                        for option in ("max_attempts", "base_delay", "timeout", "start_delay")
                    },
                    when=s["when"],
                    unless=s["unless"],
                    when_unmet=s["when_unmet"],
                    when_exhausted=s["when_exhausted"],
                )
                for s in r["steps"]
            ),
        )
        for r in rows
    ]


def metrics(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    flow: str | None = None,
    top: int = 10,
) -> Operation[Metrics]:
    """Runs started in ``[since, until)`` (default: the last 24 hours), of one flow or all."""
    _check_limit(top, MAX_TOP, "top")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInputError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    rows = yield (
        "SELECT now() AS now, "
        "array(SELECT flow_slug FROM pgflow.flows ORDER BY flow_slug) AS flows",
        None,
    )
    until = until if until is not None else rows[0]["now"]
    if since is None:
        try:
            since = until - DEFAULT_WINDOW
        except OverflowError:  # until within a day of year 1: the window starts at year 1
            since = datetime.min.replace(tzinfo=UTC)
    if since >= until:
        raise InvalidInputError(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    known: list[str] = rows[0]["flows"]
    if flow is not None and flow not in known:
        raise FlowNotFoundError(f"flow {flow!r} does not exist")
    chosen = [flow] if flow is not None else known
    window = {"flows": chosen, "since": since, "until": until, "top": top}

    yield "SELECT set_config('work_mem', %s, true)", (_METRICS_WORK_MEM,)
    outcome_rows = yield core_sql.query("monitor_run_outcomes"), window
    outcomes = outcome_rows[0]
    by_status = {
        status: int(outcomes[column])
        for status, column in (
            ("completed", "completed"),
            ("failed", "failed"),
            ("started", "running"),
        )
        if outcomes[column]
    }
    if sum(by_status.values()) != outcomes["total"]:
        rows = yield core_sql.query("monitor_runs_per_status"), window
        by_status = {r["status"]: int(r["runs"]) for r in rows}
    step_rows = yield core_sql.query("monitor_step_durations"), window
    reasons = yield core_sql.query("monitor_failure_reasons"), window
    hours = yield core_sql.query("monitor_busy_hours"), window
    queue_infos = yield from queues(chosen)
    live = yield from workers()

    completed, failed = int(outcomes["completed"]), int(outcomes["failed"])
    p50, p95 = outcomes["percentiles"] or (None, None)
    steps = tuple(StepDurations(**r) for r in step_rows)
    live_workers = dict.fromkeys(chosen, 0)
    for worker in live:
        if worker.flow_slug in live_workers:
            live_workers[worker.flow_slug] += 1
    return Metrics(
        since=since,
        until=until,
        flow=flow,
        total_runs=int(outcomes["total"]),
        completed=completed,
        failed=failed,
        running=int(outcomes["running"]),
        by_status=by_status,
        success_rate=completed / (completed + failed) if completed + failed else None,
        run_duration=DurationStats(
            count=completed, avg=outcomes["avg"], p50=p50, p95=p95, max=outcomes["max"]
        ),
        throughput_per_minute=int(outcomes["finished"]) / ((until - since).total_seconds() / 60),
        steps=steps,
        slowest_steps=tuple(sorted(steps, key=lambda s: (-s.p95, s.flow_slug, s.step_slug))[:top]),
        failure_reasons=tuple(FailureReason(r["error"], int(r["count"])) for r in reasons),
        busy_hours=tuple(BusyHour(r["hour"].astimezone(UTC), int(r["runs"])) for r in hours),
        queues=tuple(queue_infos),
        live_workers=live_workers,
    )


def _check_limit(value: int, maximum: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInputError(f"{name} must be an integer between 1 and {maximum}, got {value!r}")
