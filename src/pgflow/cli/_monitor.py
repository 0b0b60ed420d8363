"""``pgflow workers``, ``pgflow stats`` and ``pgflow prune``: who is working, how runs went,
and clearing old history (rich tables, or ``--json``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import UTC
from typing import Annotated

import typer
from rich.table import Table

from pgflow.cli._common import DatabaseUrlOption, console, database_url, fail, one_line_errors
from pgflow.cli._runs import _ago, _when
from pgflow.monitor import Metrics, Monitor

_WORKER_STYLE = {"alive": "green", "silent": "yellow", "deprecated": "dim", "stopped": "dim"}

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


@one_line_errors
def workers_command(
    database_url_flag: DatabaseUrlOption = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also silent, deprecated and stopped workers.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List live workers (a heartbeat in the last 30 s, not deprecated or stopped)."""
    with Monitor(database_url(database_url_flag), max_pool_size=1) as monitor:
        found = monitor.workers(include_stopped=show_all)
    if as_json:
        typer.echo(json.dumps([w.as_dict() for w in found], indent=2))
        return
    table = Table("worker", "flow", "function", "status", "started", "last heartbeat")
    for worker in found:
        table.add_row(
            str(worker.worker_id),
            worker.flow_slug,
            worker.function_name,
            f"[{_WORKER_STYLE.get(worker.status, '')}]{worker.status}[/]",
            _ago(worker.started_at),
            _ago(worker.last_heartbeat_at),
        )
    console.print(table)
    if not found:
        console.print("no live workers" if not show_all else "no workers registered")


@one_line_errors
def stats_command(
    database_url_flag: DatabaseUrlOption = None,
    since: Annotated[
        str | None, typer.Option(help="Runs started at or after (ISO 8601). Default: 24 h ago.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Runs started before (ISO 8601). Default: now.")
    ] = None,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow.")] = None,
    top: Annotated[int, typer.Option(help="Rows in the top-N lists.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Metrics of the runs started in a window: outcomes, durations, failures, load."""
    with Monitor(database_url(database_url_flag), max_pool_size=1) as monitor:
        found = monitor.metrics(
            since=_when(since, "--since"), until=_when(until, "--until"), flow=flow, top=top
        )
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2))
        return
    _print_metrics(found)


def _print_metrics(m: Metrics) -> None:
    rate = "-" if m.success_rate is None else f"{m.success_rate:.1%}"
    d = m.run_duration
    lines = [
        (
            "window",
            f"{m.since.astimezone(UTC):%Y-%m-%d %H:%M} → "
            f"{m.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC (runs started)",
        ),
        ("flow", m.flow or "all flows"),
        (
            "runs",
            f"{m.total_runs} started: {m.completed} completed, {m.failed} failed, "
            f"{m.running} running"
            + "".join(
                f", {n} {status}"
                for status, n in m.by_status.items()
                if status not in ("completed", "failed", "started")
            ),
        ),
        ("success", rate),
        (
            "duration",
            f"avg {_seconds(d.avg)}, p50 {_seconds(d.p50)}, p95 {_seconds(d.p95)}, "
            f"max {_seconds(d.max)}",
        ),
        ("throughput", f"{m.throughput_per_minute:.2f} finished runs/min"),
    ]
    for label, text in lines:
        console.print(f"[bold]{label:>10}[/]  {text}", highlight=False)
    if m.slowest_steps:
        table = Table("flow", "step", "completed", "avg", "p95", "max", title="slowest steps")
        for s in m.slowest_steps:
            table.add_row(
                s.flow_slug,
                s.step_slug,
                str(s.count),
                _seconds(s.avg),
                _seconds(s.p95),
                _seconds(s.max),
            )
        console.print(table)
    if m.failure_reasons:
        table = Table("runs", "error", title="failure reasons")
        for reason in m.failure_reasons:
            table.add_row(str(reason.count), f"[red]{reason.error or '-'}[/]")
        console.print(table)
    if m.busy_hours:
        table = Table("hour (UTC)", "runs started", title="busiest hours")
        for hour in m.busy_hours:
            table.add_row(f"{hour.hour:%Y-%m-%d %H:00}", str(hour.runs))
        console.print(table)
    table = Table("flow", "queued", "visible", "oldest", "live workers", title="queues")
    for queue in m.queues:
        table.add_row(
            queue.flow_slug,
            str(queue.depth),
            str(queue.visible),
            _seconds(queue.oldest_message_age),
            str(m.live_workers.get(queue.flow_slug, 0)),
        )
    console.print(table)


def _confirmed(question: str) -> bool:
    """Ask on stderr (stdout may be JSON); no answer at all (end of input) is a no."""
    try:
        return typer.confirm(question, err=True)
    except typer.Abort:
        typer.echo(err=True)  # end the prompt's line
        return False


@one_line_errors
def prune_command(
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            help="Delete runs that finished more than this many days ago.",
            metavar="DAYS",
            show_default=False,
        ),
    ],
    database_url_flag: DatabaseUrlOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete finished runs older than DAYS with their steps, tasks and archived messages, and
    workers silent since then. Runs in progress are kept."""
    if not math.isfinite(older_than) or older_than < 0:
        raise fail(f"--older-than must be a non-negative number of days, got {older_than}")
    url = database_url(database_url_flag)
    if not yes and not _confirmed(
        f"Delete every run that finished more than {older_than:g} day(s) ago?"
    ):
        raise fail("not confirmed: nothing was deleted")
    with Monitor(url, max_pool_size=1) as monitor:
        result = monitor.cleanup_older_than(days=older_than)
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    console.print(
        f"deleted {result.runs} run(s), {result.step_states} step state(s), "
        f"{result.step_tasks} task(s), {result.workers} worker(s), "
        f"{result.archived_messages} archived message(s)",
        highlight=False,
    )
