"""``pgflow install`` and ``pgflow status``."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from pgflow._db import connect
from pgflow.cli._common import DatabaseUrlOption, console, database_url, one_line_errors
from pgflow.installer import install_on, install_script, schema_status


class PgmqChoice(StrEnum):
    check = "check"
    extension = "extension"
    sql = "sql"


@one_line_errors
def install_command(
    database_url_flag: DatabaseUrlOption = None,
    sql: Annotated[
        bool,
        typer.Option(
            "--sql",
            help="Print the full install SQL instead of running it (for Alembic, Django, "
            "Supabase or any migration tool). Needs no database.",
        ),
    ] = False,
    pgmq: Annotated[
        PgmqChoice,
        typer.Option(
            help="With --sql: how the script gets pgmq. 'check' only verifies pgmq >= 1.5 is "
            "there; 'extension' adds CREATE EXTENSION pgmq; 'sql' embeds the pgmq SQL from the "
            "pgmq package (run only when pgmq is absent).",
        ),
    ] = PgmqChoice.check,
) -> None:
    """Install pgmq (when missing) and the pgflow schema. Safe to re-run, and to run twice at once.

    pgmq comes from CREATE EXTENSION when the server offers it, else from the SQL shipped by
    the pgmq package; an existing pgmq >= 1.5 is kept as it is.
    """
    if sql:
        typer.echo(install_script(pgmq=pgmq.value), nl=False)
        return
    url = database_url(database_url_flag)
    with connect(url, autocommit=True) as conn:
        report = install_on(conn)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(report.summary(), highlight=False)
    if report.realtime:
        console.print("Supabase realtime found: events are also sent with realtime.send().")


@one_line_errors
def status_command(
    database_url_flag: DatabaseUrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the database, pgmq and the pgflow schema version; exit 1 unless up to date."""
    url = database_url(database_url_flag)
    with connect(url, autocommit=True) as conn:
        status = schema_status(conn)
    if as_json:
        typer.echo(json.dumps(status.as_dict(), indent=2))
    else:
        pgmq = "missing" if status.pgmq is None else f"{status.pgmq[1]} ({status.pgmq[0]})"
        rows = [
            ("database", f"{status.database} on PostgreSQL {status.server_version}"),
            ("pgmq", pgmq),
            ("migrations", ", ".join(status.applied_migrations) or "none"),
            ("pending", ", ".join(status.pending_migrations) or "none"),
            ("functions", "current" if status.functions_current else "outdated"),
            ("realtime", "yes" if status.realtime else "no (events via NOTIFY only)"),
            ("flows", str(status.flows)),
        ]
        for key, value in rows:
            console.print(f"[bold]{key:>10}[/]  {value}", highlight=False)
        verdict = (
            "up to date" if status.up_to_date else "not installed or outdated: run pgflow install"
        )
        console.print(f"[bold]{'schema':>10}[/]  {verdict}", highlight=False)
    if not status.up_to_date:
        raise typer.Exit(1)
