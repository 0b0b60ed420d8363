"""``pgflow db``: manage the embedded PostgreSQL used when no database URL is configured."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pgflow._embedded import EmbeddedServer
from pgflow.cli._common import console, err_console, one_line_errors

db_app = typer.Typer(
    help="Manage the embedded PostgreSQL (used when no database URL is configured).",
    no_args_is_help=True,
)


@db_app.command("start")
@one_line_errors
def start() -> None:
    """Start the embedded server (or reuse the running one) and print its URL."""
    server = EmbeddedServer()
    url = server.start()
    err_console.print(f"[dim]data directory: {server.data_dir}[/]", highlight=False)
    typer.echo(url)


@db_app.command("stop")
@one_line_errors
def stop() -> None:
    """Stop the embedded server (fast shutdown: sessions are closed, data is kept)."""
    server = EmbeddedServer()
    if server.stop():
        console.print(f"stopped the embedded PostgreSQL in {server.data_dir}", highlight=False)
    else:
        console.print("the embedded PostgreSQL is not running", highlight=False)


@db_app.command("url")
@one_line_errors
def url() -> None:
    """Print the URL of the running embedded server; exit 1 when it is not running."""
    current = EmbeddedServer().url()
    if current is None:
        err_console.print("the embedded PostgreSQL is not running: `pgflow db start`")
        raise typer.Exit(1)
    typer.echo(current)


@db_app.command("status")
@one_line_errors
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Say whether the embedded server runs, where its data lives and its URL."""
    state = EmbeddedServer().status()
    if as_json:
        payload = {
            "data_dir": str(state.data_dir),
            "initialized": state.initialized,
            "running": state.running,
            "pid": state.pid,
            "url": state.url,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console.print(f"data directory: {state.data_dir}", highlight=False)
    if state.running:
        console.print(f"running (pid {state.pid}): {state.url}", highlight=False)
    else:
        note = "" if state.initialized else " (not created yet)"
        console.print(f"not running{note}", highlight=False)
