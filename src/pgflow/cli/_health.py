"""``pgflow health``: is the database reachable, the schema current, every queue served?"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pgflow.cli._common import DatabaseUrlOption, console, database_url, one_line_errors
from pgflow.client import Client


@one_line_errors
def health_command(
    database_url_flag: DatabaseUrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the database, schema, pgmq, live workers and queue depths; exit 1 when unhealthy."""
    with Client(database_url(database_url_flag), max_pool_size=1) as client:
        report = client.health_check()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        console.print(
            f"[bold]{'database':>10}[/]  "
            + (
                f"reachable (PostgreSQL {report.server_version})"
                if report.database
                else "unreachable"
            ),
            highlight=False,
        )
        if report.database:
            schema = "up to date" if report.schema_up_to_date else "outdated: run pgflow install"
            console.print(f"[bold]{'schema':>10}[/]  {schema}", highlight=False)
            console.print(
                f"[bold]{'pgmq':>10}[/]  {report.pgmq_version or 'missing'}", highlight=False
            )
            for slug in sorted(set(report.live_workers) | set(report.queue_depths)):
                console.print(
                    f"[bold]{'flow':>10}[/]  {slug}: {report.live_workers.get(slug, 0)} live "
                    f"worker(s), {report.queue_depths.get(slug, 0)} queued",
                    highlight=False,
                )
        for problem in report.problems:
            console.print(f"[bold red]{'problem':>10}[/]  {problem}", highlight=False)
        console.print(
            f"[bold]{'health':>10}[/]  " + ("healthy" if report.healthy else "UNHEALTHY"),
            highlight=False,
        )
    if not report.healthy:
        raise typer.Exit(1)
