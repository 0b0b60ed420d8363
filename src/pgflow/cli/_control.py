"""``pgflow cancel``, ``pgflow retry`` and ``pgflow resume``: run control from the shell."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer
from rich.text import Text

from pgflow.cli._common import DatabaseUrlOption, console, database_url, one_line_errors
from pgflow.cli._runs import parse_run_id, styled_status
from pgflow.client import Client, Run

RunIdArgument = Annotated[str, typer.Argument(help="The run's id.", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the run as JSON.")]


def _print_run(run: Run, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(run.as_dict(), indent=2))
        return
    line = Text.assemble(f"run {run.run_id} ({run.flow_slug}): ", styled_status(run.status))
    if run.cancel_reason:
        line.append(f", reason: {run.cancel_reason}")
    if run.retry_of is not None:
        line.append(f", retry of {run.retry_of}")
    if run.resumed_count:
        line.append(f", resumed {run.resumed_count} time(s)")
    if not run.is_terminal:
        line.append(f", {run.remaining_steps} step(s) to go")
    console.print(line, highlight=False)


def _control(database_url_flag: str | None, as_json: bool, act: Callable[[Client], Run]) -> None:
    with Client(database_url(database_url_flag), max_pool_size=1, listen=False) as client:
        run = act(client)
    _print_run(run, as_json)


@one_line_errors
def cancel_command(
    run_id: RunIdArgument,
    reason: Annotated[
        str | None, typer.Option(help="Why: kept on the run and sent with its event.")
    ] = None,
    database_url_flag: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a started run: its pending tasks are dropped, running handlers are told."""
    parsed = parse_run_id(run_id)
    _control(database_url_flag, as_json, lambda c: c.cancel_run(parsed, reason))


@one_line_errors
def retry_command(
    run_id: RunIdArgument,
    database_url_flag: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a failed or cancelled run again as a new run (same flow and input)."""
    parsed = parse_run_id(run_id)
    _control(database_url_flag, as_json, lambda c: c.retry_run(parsed))


@one_line_errors
def resume_command(
    run_id: RunIdArgument,
    database_url_flag: DatabaseUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue a failed or cancelled run: completed steps are kept, the rest runs again."""
    parsed = parse_run_id(run_id)
    _control(database_url_flag, as_json, lambda c: c.resume_run(parsed))
