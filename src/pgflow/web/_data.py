"""What the dashboard reads, as the API's models: one object per app, on one connection pool.

Runs, flows, workers and metrics come from the monitor's operations (:mod:`pgflow.monitor`),
health and starting runs from the client's; two aggregations are the dashboard's own: flow
statistics for all flows in one statement, and metrics cut into time buckets for the charts.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgflow import _schedule_ops as schedule_ops
from pgflow._flow_ops import _READ_STEPS
from pgflow._ops import Operation, arun
from pgflow.client import AsyncClient
from pgflow.errors import FlowNotFoundError, InvalidInputError, ScheduleNotFoundError
from pgflow.monitor import _operations as monitor_ops
from pgflow.web._models import (
    FlowDetail,
    FlowStats,
    FlowSummary,
    Health,
    Metrics,
    RunDetail,
    RunPage,
    RunSummary,
    Schedule,
    WorkerInfo,
)

#: Charts never get more bars than this (the window is cut into at most this many buckets).
MAX_BUCKETS = 500
#: Flow statistics cover the runs started this recently, unless a request says otherwise.
STATS_WINDOW = timedelta(hours=24)


def _has_schedules() -> Operation[bool]:
    """Whether the core has cron schedules (upstream 0.8.1 has no schedules table)."""
    rows = yield "SELECT to_regclass('pgflow.schedules') IS NOT NULL AS present", None
    present: bool = rows[0]["present"]
    return present


def _schedules() -> Operation[list[Schedule]]:
    if not (yield from _has_schedules()):
        return []
    found = yield from schedule_ops.list_schedules()
    return [Schedule.model_validate(s.as_dict()) for s in found]


def _set_schedule_enabled(name: str, enabled: bool) -> Operation[Schedule]:
    if not (yield from _has_schedules()):
        raise ScheduleNotFoundError(f"schedule {name!r} does not exist")
    changed = yield from schedule_ops.set_schedule_enabled(name, enabled)
    return Schedule.model_validate(changed.as_dict())


def _step_deps(slug: str) -> Operation[dict[str, list[str]]]:
    """The dependencies of each step of a flow."""
    rows = yield _READ_STEPS, (slug,)
    return {r["step_slug"]: list(r["deps"]) for r in rows}


def _run_detail(run_id: uuid.UUID) -> Operation[RunDetail]:
    status = yield from monitor_ops.get_status(run_id, include_tasks=True)
    deps = yield from _step_deps(status.flow_slug)
    data = status.as_dict()
    data["steps"] = [{**step, "deps": deps.get(step["step_slug"], [])} for step in data["steps"]]
    return RunDetail.model_validate(data)


_FLOW_STATS = """
SELECT r.flow_slug,
       count(*) AS runs,
       count(*) FILTER (WHERE r.status = 'completed') AS completed,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'started') AS running,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM r.completed_at - r.started_at)::float8
       ) FILTER (WHERE r.status = 'completed') AS p50_duration,
       percentile_cont(0.95) WITHIN GROUP (
           ORDER BY extract(epoch FROM r.completed_at - r.started_at)::float8
       ) FILTER (WHERE r.status = 'completed') AS p95_duration
FROM pgflow.runs AS r
WHERE r.started_at >= %(since)s AND (%(flow)s::text IS NULL OR r.flow_slug = %(flow)s)
GROUP BY r.flow_slug
"""

_NO_RUNS = FlowStats(
    runs=0,
    completed=0,
    failed=0,
    running=0,
    success_rate=None,
    p50_duration=None,
    p95_duration=None,
)


def _flow_summaries(since: datetime, flow: str | None = None) -> Operation[list[FlowSummary]]:
    infos = yield from monitor_ops.flows()
    rows = yield _FLOW_STATS, {"since": since, "flow": flow}
    stats = {}
    for row in rows:
        counts = {k: v for k, v in row.items() if k != "flow_slug"}
        finished = row["completed"] + row["failed"]
        rate = row["completed"] / finished if finished else None
        stats[row["flow_slug"]] = FlowStats(**counts, success_rate=rate)
    return [
        FlowSummary.model_validate({**info.as_dict(), "stats": stats.get(info.flow_slug, _NO_RUNS)})
        for info in infos
        if flow is None or info.flow_slug == flow
    ]


def _flow_detail(slug: str, since: datetime, recent: int) -> Operation[FlowDetail]:
    found = yield from _flow_summaries(since, slug)
    if not found:
        raise FlowNotFoundError(f"flow {slug!r} does not exist")
    page = yield from monitor_ops.list_runs(flow=slug, limit=recent)
    recent_runs = [RunSummary.model_validate(r.as_dict()) for r in page.runs]
    return FlowDetail(**dict(found[0]), recent_runs=recent_runs)


_BUCKETS = """
SELECT b.start,
       count(r.run_id) AS started,
       count(r.run_id) FILTER (WHERE r.status = 'completed') AS completed,
       count(r.run_id) FILTER (WHERE r.status = 'failed') AS failed,
       percentile_cont(0.95) WITHIN GROUP (
           ORDER BY extract(epoch FROM r.completed_at - r.started_at)::float8
       ) FILTER (WHERE r.status = 'completed') AS p95_duration
FROM generate_series(0, %(count)s - 1) AS i
CROSS JOIN LATERAL (SELECT %(since)s::timestamptz + i * %(width)s::interval AS start) AS b
LEFT JOIN pgflow.runs AS r
       ON r.started_at >= b.start AND r.started_at < b.start + %(width)s::interval
      AND r.started_at < %(until)s
      AND (%(flow)s::text IS NULL OR r.flow_slug = %(flow)s)
GROUP BY b.start
ORDER BY b.start
"""


def _metrics(
    since: datetime | None, until: datetime | None, buckets: int, flow: str | None
) -> Operation[Metrics]:
    if not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidInputError(f"buckets must be between 1 and {MAX_BUCKETS}, got {buckets}")
    summary = yield from monitor_ops.metrics(since=since, until=until, flow=flow)
    window = summary.until - summary.since
    width = max(window / buckets, timedelta(milliseconds=1))
    rows = yield (
        _BUCKETS,
        {
            "since": summary.since,
            "until": summary.until,
            "width": width,
            "count": min(buckets, math.ceil(window / width)),
            "flow": flow,
        },
    )
    data = summary.as_dict()
    shared = {k: data[k] for k in Metrics.model_fields if k in data}
    return Metrics.model_validate(
        {**shared, "bucket_seconds": width.total_seconds(), "buckets": rows}
    )


class DashboardData:
    """The reads and actions of one dashboard app, sharing one pool and one client."""

    def __init__(self, database_url: str, *, max_pool_size: int = 5) -> None:
        self.database_url = database_url
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=max_pool_size,
            kwargs={"autocommit": True},
            open=False,
            name="pgflow-dashboard",
        )
        self.client = AsyncClient(pool=self.pool, listen=False)
        self._opened = False

    async def _open(self) -> None:
        if not self._opened:  # opened on first use: a mounted app may never see its lifespan
            self._opened = True
            await self.pool.open(wait=False)

    async def _run(self, op: Operation[Any]) -> Any:
        await self._open()
        async with self.pool.connection() as conn:
            return await arun(conn, op)

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()

    async def list_runs(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        page = await self._run(
            monitor_ops.list_runs(
                flow=flow, status=status, since=since, until=until, limit=limit, cursor=cursor
            )
        )
        return RunPage.model_validate(page.as_dict())

    async def run(self, run_id: uuid.UUID) -> RunDetail:
        detail: RunDetail = await self._run(_run_detail(run_id))
        return detail

    async def flow_slugs(self) -> list[str]:
        flows = await self._run(monitor_ops.flows())
        return [f.flow_slug for f in flows]

    async def flows(self, *, since: datetime) -> list[FlowSummary]:
        flows: list[FlowSummary] = await self._run(_flow_summaries(since))
        return flows

    async def flow(self, slug: str, *, since: datetime, recent: int = 20) -> FlowDetail:
        detail: FlowDetail = await self._run(_flow_detail(slug, since, recent))
        return detail

    async def workers(self, *, include_stopped: bool = False) -> list[WorkerInfo]:
        found = await self._run(monitor_ops.workers(include_stopped=include_stopped))
        return [WorkerInfo.model_validate(w.as_dict()) for w in found]

    async def schedules(self) -> list[Schedule]:
        found: list[Schedule] = await self._run(_schedules())
        return found

    async def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        changed: Schedule = await self._run(_set_schedule_enabled(name, enabled))
        return changed

    async def metrics(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        buckets: int = 48,
        flow: str | None = None,
    ) -> Metrics:
        metrics: Metrics = await self._run(_metrics(since, until, buckets, flow))
        return metrics

    async def health(self, *, events_listening: bool) -> Health:
        # The client checks on a fresh connection, so an unreachable server is reported quickly.
        report = await self.client.health_check()
        return Health.model_validate({**report.as_dict(), "events_listening": events_listening})

    async def start_run(self, flow: str, input: Any) -> RunSummary:
        await self._open()
        handle = await self.client.start_flow(flow, input)
        run = handle.started
        return RunSummary(
            run_id=run.run_id,
            flow_slug=run.flow_slug,
            status=run.status,
            started_at=run.started_at,
            completed_at=run.completed_at,
            failed_at=run.failed_at,
            duration=None,
            remaining_steps=run.remaining_steps,
            error=None,
        )

    async def apply(self, action: str, run_id: uuid.UUID) -> RunDetail:
        """Call the client's ``<action>_run`` (cancel, retry, resume) and return the run it
        gives back (for a retry, the new run)."""
        await self._open()
        affected = await getattr(self.client, f"{action}_run")(run_id)
        return await self.run(affected.run_id)
