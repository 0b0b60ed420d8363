"""What every command shares: the database option, one-line errors, console output."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import psycopg
import typer
from rich.console import Console

from pgflow._db import resolve_url
from pgflow._embedded import EmbeddedServer
from pgflow.config import choose_database
from pgflow.errors import PgflowError, first_line

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        "-d",
        help=(
            "PostgreSQL URL. Default: $PGFLOW_DATABASE_URL, then $DATABASE_URL, "
            "then the embedded server (started on demand)."
        ),
        show_default=False,
        metavar="URL",
    ),
]

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PgflowError as exc:
            raise fail(str(exc)) from None
        except psycopg.Error as exc:
            raise fail(f"database error: {first_line(exc)}") from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def _announce_embedded(server: EmbeddedServer, url: str) -> None:
    err_console.print(
        f"[dim]Using the embedded PostgreSQL in {server.data_dir} ({url}); "
        "stop it with `pgflow db stop`.[/]",
        highlight=False,
        soft_wrap=True,
    )


def database_url(flag: str | None) -> str:
    """Resolve the database for a command, announcing the embedded server when it is used."""
    return resolve_url(choose_database(flag), on_embedded=_announce_embedded)
