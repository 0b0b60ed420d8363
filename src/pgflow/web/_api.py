"""The JSON API under ``/api`` and the live event stream ``/api/events``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse

from pgflow.client._operations import MAX_PAGE
from pgflow.dsl._schedule import SCHEDULE_NAME
from pgflow.events import RunEvent
from pgflow.web._data import MAX_BUCKETS, STATS_WINDOW
from pgflow.web._models import (
    FlowDetail,
    FlowSummary,
    Health,
    Metrics,
    Problem,
    RunDetail,
    RunPage,
    RunSummary,
    Schedule,
    StartRun,
    WorkerInfo,
)
from pgflow.web._security import same_origin
from pgflow.web._state import RUN_ACTIONS, Dashboard

#: Sent when nothing happened for this long, so that proxies keep the stream open.
KEEPALIVE_SECONDS = 15.0

#: The shape of a pgflow slug; anything else cannot name a flow.
SLUG_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SLUG = Path(max_length=128, pattern=SLUG_PATTERN, description="A flow slug.")
StatusFilter = Annotated[
    str | None,
    Query(max_length=32, pattern=r"^[a-z_]+$", description="started, completed, failed…"),
]
FlowFilter = Annotated[
    str | None, Query(max_length=128, pattern=SLUG_PATTERN, description="A flow slug.")
]
Since = Annotated[datetime | None, Query(description="ISO 8601, with a time zone.")]


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


DashboardDep = Annotated[Dashboard, Depends(dashboard)]


def allowed_action(request: Request, state: DashboardDep) -> None:
    """Actions need --enable-actions, and a request from this dashboard's own pages (or a
    client that is not a browser)."""
    if not state.enable_actions:
        raise HTTPException(403, "actions are disabled: start the dashboard with --enable-actions")
    if not same_origin(request.headers):
        raise HTTPException(403, "cross-origin requests may not run actions")


def _event_message(item: RunEvent | object) -> str:
    if not isinstance(item, RunEvent):  # RESYNC: events may have been missed
        return "event: resync\ndata: {}\n\n"
    data = {
        "event_type": item.event_type,
        "run_id": str(item.run_id),
        "flow_slug": item.flow_slug,
        "step_slug": item.step_slug,
        "status": item.status,
    }
    return f"data: {json.dumps(data)}\n\n"


def api_router(run_actions: tuple[str, ...]) -> APIRouter:
    router = APIRouter(
        prefix="/api",
        responses={
            401: {"model": Problem, "description": "A token is required."},
            403: {"model": Problem, "description": "Wrong token, or actions are disabled."},
        },
    )

    @router.get("/flows", tags=["flows"])
    async def list_flows(state: DashboardDep, since: Since = None) -> list[FlowSummary]:
        """Every flow with its options and the statistics of its runs since ``since``
        (default: the last 24 hours)."""
        return await state.data.flows(since=_since(since))

    @router.get("/flows/{flow_slug}", tags=["flows"], responses={404: {"model": Problem}})
    async def get_flow(
        state: DashboardDep,
        flow_slug: Annotated[str, SLUG],
        since: Since = None,
        recent: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    ) -> FlowDetail:
        """One flow: options, steps with their dependencies (the DAG), statistics, recent runs."""
        return await state.data.flow(flow_slug, since=_since(since), recent=recent)

    @router.post(
        "/flows/{flow_slug}/runs",
        tags=["actions"],
        status_code=201,
        dependencies=[Depends(allowed_action)],
        responses={400: {"model": Problem}, 404: {"model": Problem}},
    )
    async def start_run(
        state: DashboardDep,
        flow_slug: Annotated[str, SLUG],
        body: Annotated[StartRun, Body()],
    ) -> RunSummary:
        """Start a run of the flow with the given input (needs actions enabled)."""
        return await state.data.start_run(flow_slug, body.input)

    @router.get("/runs", tags=["runs"], responses={400: {"model": Problem}})
    async def list_runs(
        state: DashboardDep,
        status: StatusFilter = None,
        flow: FlowFilter = None,
        since: Since = None,
        until: Since = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    ) -> RunPage:
        """Runs, newest first, a page at a time (pass ``next_cursor`` back as ``cursor``)."""
        return await state.data.list_runs(
            status=status, flow=flow, since=since, until=until, limit=limit, cursor=cursor
        )

    @router.get("/runs/{run_id}", tags=["runs"], responses={404: {"model": Problem}})
    async def get_run(state: DashboardDep, run_id: uuid.UUID) -> RunDetail:
        """One run with its steps (dependencies, progress, outputs, errors) and tasks."""
        return await state.data.run(run_id)

    for action in run_actions:
        _add_run_action(router, action)

    @router.get("/workers", tags=["workers"])
    async def list_workers(state: DashboardDep, include_stopped: bool = False) -> list[WorkerInfo]:
        """Workers that sent a heartbeat lately (all of them with ``include_stopped``)."""
        return await state.data.workers(include_stopped=include_stopped)

    @router.get("/schedules", tags=["schedules"])
    async def list_schedules(state: DashboardDep) -> list[Schedule]:
        """Every cron schedule, by name: its flow, cron, time zone, whether it is enabled, its
        last and next occurrence, and since when it is overdue (if it is)."""
        return await state.data.schedules()

    for enabled in (True, False):
        _add_schedule_switch(router, enabled)

    @router.get(
        "/metrics", tags=["metrics"], responses={400: {"model": Problem}, 404: {"model": Problem}}
    )
    async def get_metrics(
        state: DashboardDep,
        since: Since = None,
        until: Since = None,
        buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 48,
        flow: FlowFilter = None,
    ) -> Metrics:
        """Runs started, completed and failed, and run durations, per time bucket (default
        window: the last 24 hours)."""
        return await state.data.metrics(since=since, until=until, buckets=buckets, flow=flow)

    @router.get("/health", tags=["health"])
    async def health(state: DashboardDep) -> Health:
        """Database, schema, pgmq, live workers and queue depths, and this server's listener."""
        return await state.data.health(events_listening=state.hub.listening)

    @router.get(
        "/events",
        tags=["events"],
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}
        },
    )
    async def events(state: DashboardDep, run_id: uuid.UUID | None = None) -> StreamingResponse:
        """Live state changes as server-sent events (of one run, or of every run): each
        ``data:`` line is ``{event_type, run_id, flow_slug, step_slug, status}``; an ``event:
        resync`` means some may have been missed. One database listener serves every client."""
        return StreamingResponse(
            _stream(state, run_id),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return router


def _add_run_action(router: APIRouter, action: str) -> None:
    async def run_action(state: DashboardDep, run_id: uuid.UUID) -> RunDetail:
        return await state.data.apply(action, run_id)

    run_action.__doc__ = (
        f"{RUN_ACTIONS[action].help} Returns the run afterwards (for a retry, the new run). Needs "
        "actions enabled; 409 when the run's state does not allow it."
    )
    router.add_api_route(
        f"/runs/{{run_id}}/{action}",
        run_action,
        methods=["POST"],
        name=f"{action}_run",
        tags=["actions"],
        dependencies=[Depends(allowed_action)],
        responses={404: {"model": Problem}, 409: {"model": Problem}},
    )


def _add_schedule_switch(router: APIRouter, enabled: bool) -> None:
    verb = "enable" if enabled else "disable"

    async def switch(
        state: DashboardDep,
        name: Annotated[str, Path(pattern=SCHEDULE_NAME.pattern, description="Its name.")],
    ) -> Schedule:
        return await state.data.set_schedule_enabled(name, enabled)

    switch.__doc__ = (
        "Resume a schedule (the paused time is not caught up)."
        if enabled
        else "Pause a schedule: it starts no runs until enabled again."
    ) + " Returns the schedule afterwards. Needs actions enabled."
    router.add_api_route(
        f"/schedules/{{name}}/{verb}",
        switch,
        methods=["POST"],
        name=f"{verb}_schedule",
        tags=["actions"],
        dependencies=[Depends(allowed_action)],
        responses={404: {"model": Problem}},
    )


def _since(value: datetime | None) -> datetime:
    return value if value is not None else datetime.now(UTC) - STATS_WINDOW


async def _stream(state: Dashboard, run_id: uuid.UUID | None) -> AsyncIterator[str]:
    async with state.hub.subscribe(run_id) as sink:
        yield "retry: 2000\n: connected\n\n"
        while True:
            try:
                item: Any = await asyncio.wait_for(sink.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            yield _event_message(item)
