"""``create_app``: the dashboard as one FastAPI application, to serve or to mount."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterable
from importlib.resources import files
from pathlib import Path

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from pgflow._db import resolve_url
from pgflow._version import __version__
from pgflow.errors import (
    DatabaseUnavailableError,
    FlowNotFoundError,
    InvalidInputError,
    PgflowError,
    RunNotFoundError,
    RunStateError,
    ScheduleNotFoundError,
    first_line,
)
from pgflow.events import AsyncEventHub
from pgflow.web._api import api_router
from pgflow.web._data import DashboardData
from pgflow.web._pages import Site, problem_page
from pgflow.web._security import DashboardGuard, relative_path
from pgflow.web._state import Dashboard, available_run_actions
from pgflow.web._views import pages_router

#: Tokens travel in headers, URLs and a cookie: these characters are safe in all three.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]{8,}")

_STATUS_OF: tuple[tuple[type[PgflowError], int], ...] = (
    (RunNotFoundError, 404),
    (FlowNotFoundError, 404),
    (ScheduleNotFoundError, 404),
    (InvalidInputError, 400),
    (RunStateError, 409),
    (DatabaseUnavailableError, 503),
)


def check_token(token: str | None) -> str | None:
    """The token, or a ValueError that says what a usable one looks like."""
    if token is not None and not TOKEN_PATTERN.fullmatch(token):
        raise ValueError(
            "the dashboard token must be at least 8 characters of A-Z a-z 0-9 . _ ~ + / = -"
        )
    return token


def _problem(request: Request, status: int, message: str) -> Response:
    if relative_path(request.scope).startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=status)
    site = Site(base=str(request.scope.get("root_path", "")).rstrip("/"))
    title = {404: "Not found", 400: "Bad request"}.get(status, "Error")
    return HTMLResponse(problem_page(site, title, message), status_code=status)


def create_app(
    database_url: str | None = None,
    *,
    token: str | None = None,
    enable_actions: bool = False,
    allowed_hosts: Iterable[str] | None = None,
    max_pool_size: int = 5,
) -> FastAPI:
    """The dashboard: JSON API under ``/api`` (schema at ``/api/openapi.json``), live events at
    ``/api/events``, HTML pages at ``/``.

    ``token``: when set, every request must carry it (see :mod:`pgflow.web._security`).
    ``enable_actions``: allow starting runs, and cancelling, retrying and resuming them.
    ``allowed_hosts``: refuse requests whose Host header names another host (what
    ``pgflow dashboard`` does on loopback without a token, against DNS rebinding).
    Mount it in another ASGI app with ``outer.mount("/pgflow", create_app(...))``: it opens its
    database pool and listener on first use, so it works without its lifespan too.
    """
    url = database_url or resolve_url()
    state = Dashboard(
        data=DashboardData(url, max_pool_size=max_pool_size),
        hub=AsyncEventHub(url),
        enable_actions=enable_actions,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Subscribing starts the process's one LISTEN connection, which then stays up for the
        # pages' event streams (a mounted app without a lifespan starts it on first use).
        async with state.hub.subscribe():
            pass
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="pgflow dashboard",
        version=__version__,
        description="Runs, flows, workers and metrics of a pgflow database, live.",
        openapi_url="/api/openapi.json",
        # The interactive docs load their scripts from a CDN; the dashboard works offline.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.dashboard = state
    app.include_router(api_router(available_run_actions()))
    app.include_router(pages_router())
    static = Path(str(files("pgflow.web").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")

    for error, status in _STATUS_OF:

        async def handle(request: Request, exc: Exception, status: int = status) -> Response:
            return _problem(request, status, str(exc))

        app.add_exception_handler(error, handle)

    async def database_error(request: Request, exc: Exception) -> Response:
        return _problem(request, 503, f"database error: {first_line(exc)}")

    async def invalid_value(request: Request, exc: Exception) -> Response:
        # Values PostgreSQL cannot store (a NUL character in a filter, say): the request's fault.
        return _problem(request, 400, f"invalid value: {first_line(exc)}")

    app.add_exception_handler(psycopg.OperationalError, database_error)
    app.add_exception_handler(psycopg.DataError, invalid_value)
    hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None
    app.add_middleware(DashboardGuard, token=check_token(token), allowed_hosts=hosts)
    return app
