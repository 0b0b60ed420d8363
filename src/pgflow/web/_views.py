"""The HTML pages and the fragments their script refetches on live events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pgflow.errors import RunNotFoundError
from pgflow.web._api import DashboardDep
from pgflow.web._data import STATS_WINDOW
from pgflow.web._pages import (
    RunFilters,
    Site,
    flow_page,
    flows_page,
    metrics_page,
    run_fragment,
    run_page,
    runs_fragment,
    runs_page,
    schedules_page,
    workers_page,
)


def site_of(request: Request, state: DashboardDep) -> Site:
    return Site(
        base=str(request.scope.get("root_path", "")).rstrip("/"),
        run_actions=state.run_actions if state.enable_actions else (),
        can_start=state.enable_actions,
        can_switch_schedules=state.enable_actions,
    )


SiteDep = Annotated[Site, Depends(site_of)]
Text = Annotated[str | None, Query(max_length=512)]


def _run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise RunNotFoundError(f"not a run id (a UUID): {text!r}") from None


def pages_router() -> APIRouter:
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/")
    async def runs(
        state: DashboardDep,
        site: SiteDep,
        status: Text = None,
        flow: Text = None,
        q: Text = None,
        cursor: Text = None,
    ) -> Response:
        message = ""
        if q and q.strip():
            try:
                return RedirectResponse(f"{site.base}/runs/{uuid.UUID(q.strip())}", 303)
            except ValueError:
                message = f"Not a run id (a UUID): {q}"
        filters = RunFilters(status or None, flow or None, q or None, cursor or None)
        page = await state.data.list_runs(
            status=filters.status, flow=filters.flow, cursor=filters.cursor
        )
        slugs = await state.data.flow_slugs()
        return HTMLResponse(runs_page(site, page, filters, slugs, message))

    @router.get("/fragments/runs")
    async def runs_live(
        state: DashboardDep, site: SiteDep, status: Text = None, flow: Text = None
    ) -> str:
        filters = RunFilters(status or None, flow or None)
        page = await state.data.list_runs(status=filters.status, flow=filters.flow)
        return runs_fragment(site, page, filters)

    @router.get("/runs/{run_id}")
    async def run(state: DashboardDep, site: SiteDep, run_id: str) -> str:
        return run_page(site, await state.data.run(_run_id(run_id)))

    @router.get("/fragments/runs/{run_id}")
    async def run_live(state: DashboardDep, site: SiteDep, run_id: str) -> str:
        return run_fragment(site, await state.data.run(_run_id(run_id)))

    @router.get("/flows")
    async def flows(state: DashboardDep, site: SiteDep) -> str:
        return flows_page(site, await state.data.flows(since=datetime.now(UTC) - STATS_WINDOW))

    @router.get("/flows/{flow_slug}")
    async def flow(state: DashboardDep, site: SiteDep, flow_slug: str) -> str:
        since = datetime.now(UTC) - STATS_WINDOW
        return flow_page(site, await state.data.flow(flow_slug, since=since))

    @router.get("/workers")
    async def workers(state: DashboardDep, site: SiteDep, include_stopped: bool = False) -> str:
        found = await state.data.workers(include_stopped=include_stopped)
        return workers_page(site, found, include_stopped)

    @router.get("/schedules")
    async def schedules(state: DashboardDep, site: SiteDep) -> str:
        return schedules_page(site, await state.data.schedules())

    @router.get("/metrics")
    async def metrics(state: DashboardDep, site: SiteDep, flow: Text = None) -> str:
        measured = await state.data.metrics(flow=flow or None)
        return metrics_page(site, measured, await state.data.flow_slugs())

    return router
