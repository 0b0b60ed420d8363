"""``pgflow runs`` and ``pgflow run ID``: what ran, how it went (rich tables, or ``--json``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from pgflow.cli._common import DatabaseUrlOption, console, database_url, fail, one_line_errors
from pgflow.client import Client, Run


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = value.total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} must be an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_STATUS_STYLE = {"completed": "green", "failed": "red", "started": "yellow", "created": "dim"}


@one_line_errors
def runs_command(
    database_url_flag: DatabaseUrlOption = None,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow.")] = None,
    status: Annotated[str | None, typer.Option(help="started, completed or failed.")] = None,
    since: Annotated[str | None, typer.Option(help="Started at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Started before (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="Runs per page (1-1000).")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Next page: the cursor a page printed.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first."""
    with Client(database_url(database_url_flag), max_pool_size=1, listen=False) as client:
        page = client.list_runs(
            flow=flow,
            status=status,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        payload = {"runs": [r.as_dict() for r in page.runs], "next_cursor": page.next_cursor}
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table("run", "flow", "status", "started", "duration", "error")
    for run in page.runs:
        style = _STATUS_STYLE.get(run.status, "")
        table.add_row(
            str(run.run_id),
            run.flow_slug,
            f"[{style}]{run.status}[/]",
            _ago(run.started_at),
            _duration(run.duration),
            (run.error_message or "")[:60],
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@one_line_errors
def run_command(
    run_id: Annotated[str, typer.Argument(help="The run's id.", show_default=False)],
    database_url_flag: DatabaseUrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one run: its steps with status, tasks, attempts, duration and errors."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        raise fail(f"not a run id (a UUID): {run_id!r}") from None
    with Client(database_url(database_url_flag), max_pool_size=1, listen=False) as client:
        full = client.get_run_with_states(parsed)
    if as_json:
        steps = []
        for step in full.steps:
            tasks = full.tasks_of(step.step_slug)
            steps.append(
                {
                    "step_slug": step.step_slug,
                    "step_type": step.step_type,
                    "status": step.status,
                    "tasks_done": sum(t.status == "completed" for t in tasks),
                    "tasks_total": step.initial_tasks,
                    "attempts": max((t.attempts_count for t in tasks), default=0),
                    "duration_seconds": step.duration.total_seconds() if step.duration else None,
                    "error_message": step.error_message,
                }
            )
        typer.echo(json.dumps({"run": full.run.as_dict(), "steps": steps}, indent=2))
        return
    run: Run = full.run
    style = _STATUS_STYLE.get(run.status, "")
    console.print(
        f"[bold]{run.flow_slug}[/] {run.run_id}  [{style}]{run.status}[/]  "
        f"started {_ago(run.started_at)}, took {_duration(run.duration)}",
        highlight=False,
    )
    longest = max((s.duration.total_seconds() for s in full.steps if s.duration), default=0.0)
    table = Table("step", "type", "status", "tasks", "attempts", "duration", "", "error")
    for step in full.steps:
        tasks = full.tasks_of(step.step_slug)
        done = sum(t.status == "completed" for t in tasks)
        total = "?" if step.initial_tasks is None else str(step.initial_tasks)
        seconds = step.duration.total_seconds() if step.duration else 0.0
        bar = "█" * max(1, round(20 * seconds / longest)) if longest and step.duration else ""
        table.add_row(
            step.step_slug,
            step.step_type,
            f"[{_STATUS_STYLE.get(step.status, '')}]{step.status}[/]",
            f"{done}/{total}",
            str(max((t.attempts_count for t in tasks), default=0)),
            _duration(step.duration),
            bar,
            (step.error_message or "")[:60],
        )
    console.print(table)
