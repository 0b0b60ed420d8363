"""``pgflow schedules``: list the cron schedules; ``add``, ``remove``, ``enable``, ``disable``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from pgflow.cli._common import DatabaseUrlOption, console, database_url, fail, one_line_errors
from pgflow.client import Client, Schedule
from pgflow.dsl._schedule import DEFAULT_MAX_CATCH_UP

schedules_app = typer.Typer(
    help="Cron schedules: list them (with --json for scripts), add, remove, enable, disable.",
    no_args_is_help=False,
    invoke_without_command=True,
)

NameArgument = Annotated[str, typer.Argument(help="The schedule's name.", show_default=False)]


def _client(flag: str | None) -> Client:
    return Client(database_url(flag), max_pool_size=1, listen=False)


def _at(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _print(schedules: list[Schedule], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in schedules], indent=2))
        return
    table = Table("name", "flow", "cron", "timezone", "enabled", "last", "next")
    for item in schedules:
        upcoming = _at(item.next_occurrence_at)
        if item.overdue_since is not None:
            upcoming = f"[red]overdue since {_at(item.overdue_since)}[/]"
        table.add_row(
            item.name,
            item.flow_slug,
            item.cron,
            item.timezone,
            "yes" if item.enabled else "[dim]no[/]",
            _at(item.last_occurrence_at),
            upcoming,
        )
    console.print(table)


@schedules_app.callback()
@one_line_errors
def schedules_command(
    ctx: typer.Context,
    database_url_flag: DatabaseUrlOption = None,
    flow: Annotated[str | None, typer.Option(help="Only the schedules of this flow.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the schedules: flow, cron, time zone, enabled, last and next occurrence."""
    if ctx.invoked_subcommand is not None:
        return
    with _client(database_url_flag) as client:
        _print(client.list_schedules(flow=flow), as_json)


@schedules_app.command("add")
@one_line_errors
def add_command(
    flow: Annotated[str, typer.Argument(help="The flow's slug.", show_default=False)],
    cron: Annotated[
        str, typer.Argument(help='A cron expression, e.g. "*/5 * * * *".', show_default=False)
    ],
    database_url_flag: DatabaseUrlOption = None,
    name: Annotated[str | None, typer.Option(help="Schedule name (default: the flow).")] = None,
    input_json: Annotated[
        str, typer.Option("--input", help="The runs' input, as JSON.", show_default=False)
    ] = "null",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the cron.")] = "UTC",
    max_catch_up: Annotated[
        int, typer.Option(help="Missed occurrences fired after downtime (latest first).")
    ] = DEFAULT_MAX_CATCH_UP,
    enabled: Annotated[bool, typer.Option(help="Start enabled.")] = True,
) -> None:
    """Create or replace a schedule."""
    try:
        payload: Any = json.loads(input_json)
    except ValueError as exc:
        raise fail(f"--input is not JSON: {exc}") from None
    with _client(database_url_flag) as client:
        schedule = client.schedule(
            flow,
            cron,
            input=payload,
            name=name,
            timezone=timezone,
            max_catch_up=max_catch_up,
            enabled=enabled,
        )
    console.print(
        f"schedule {schedule.name}: next at {_at(schedule.next_occurrence_at)}", highlight=False
    )


@schedules_app.command("remove")
@one_line_errors
def remove_command(name: NameArgument, database_url_flag: DatabaseUrlOption = None) -> None:
    """Remove a schedule (the runs it started are kept)."""
    with _client(database_url_flag) as client:
        if not client.unschedule(name):
            raise fail(f"schedule {name!r} does not exist")
    console.print(f"schedule {name} removed", highlight=False)


def _set_enabled(name: str, flag: str | None, enabled: bool) -> None:
    with _client(flag) as client:
        schedule = client.set_schedule_enabled(name, enabled)
    state = f"enabled, next at {_at(schedule.next_occurrence_at)}" if enabled else "disabled"
    console.print(f"schedule {name} {state}", highlight=False)


@schedules_app.command("enable")
@one_line_errors
def enable_command(name: NameArgument, database_url_flag: DatabaseUrlOption = None) -> None:
    """Resume a schedule (occurrences while it was disabled are not caught up)."""
    _set_enabled(name, database_url_flag, True)


@schedules_app.command("disable")
@one_line_errors
def disable_command(name: NameArgument, database_url_flag: DatabaseUrlOption = None) -> None:
    """Pause a schedule."""
    _set_enabled(name, database_url_flag, False)
