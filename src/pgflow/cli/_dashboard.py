"""``pgflow dashboard``: serve the web dashboard and its HTTP API."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from pgflow.cli._common import DatabaseUrlOption, database_url, err_console, fail, one_line_errors

TOKEN_ENV = "PGFLOW_DASHBOARD_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


@one_line_errors
def dashboard_command(
    database_url_flag: DatabaseUrlOption = None,
    host: Annotated[
        str, typer.Option(help="Address to bind. Other than loopback, a token is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV,
            help="Every request must carry it: 'Authorization: Bearer TOKEN', or open a page "
            f"with ?token=TOKEN once. Default: ${TOKEN_ENV}.",
            show_default=False,
        ),
    ] = None,
    enable_actions: Annotated[
        bool, typer.Option(help="Allow starting runs (and cancel/retry where supported).")
    ] = False,
) -> None:
    """Serve the dashboard: runs, flows, workers and metrics, live; JSON API under /api."""
    import uvicorn

    from pgflow.web import create_app
    from pgflow.web._app import check_token

    if token is not None:
        try:
            check_token(token)
        except ValueError as exc:
            raise fail(str(exc)) from None
    if token is None and not is_loopback(host):
        raise fail(
            f"refusing to serve on {host} without a token: pass --token or set ${TOKEN_ENV} "
            "(or bind to 127.0.0.1)"
        )
    # Without a token, only the loopback names may reach it: a foreign site whose name
    # resolves to 127.0.0.1 (DNS rebinding) gets a 400, not the dashboard.
    loopback_names = None if token else {"localhost", "127.0.0.1", "::1", host.strip("[]")}
    app = create_app(
        database_url(database_url_flag),
        token=token,
        enable_actions=enable_actions,
        allowed_hosts=loopback_names,
    )
    shown = f"[{host}]" if ":" in host else host
    err_console.print(
        f"pgflow dashboard on http://{shown}:{port}/"
        + (" (token required)" if token else "")
        + (", actions enabled" if enable_actions else ", read-only"),
        highlight=False,
    )
    # Open event streams would hold a plain shutdown forever: give them a few seconds.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
