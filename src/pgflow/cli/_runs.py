"""``pgflow runs`` and ``pgflow run ID``: what ran, how it went (rich tables, or ``--json``)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Column, Table
from rich.text import Text

from pgflow.cli._common import DatabaseUrlOption, console, database_url, fail, one_line_errors
from pgflow.client import Client, Run, RunWithStates, StepState, TaskState


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


# Statuses not listed here (added by newer cores) are shown unstyled.
STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "started": "yellow",
    "created": "dim",
    "cancelled": "magenta",
    "skipped": "dim",
}

#: Columns of the timeline (the Gantt bars of ``pgflow run ID``).
TIMELINE_WIDTH = 24
#: A step with more tasks than this is summarised by ``--tasks`` (its failed tasks still shown).
TASKS_SHOWN_PER_STEP = 10


@one_line_errors
def runs_command(
    database_url_flag: DatabaseUrlOption = None,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow.")] = None,
    status: Annotated[
        str | None, typer.Option(help="started, completed, failed or cancelled.")
    ] = None,
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
        table.add_row(
            str(run.run_id),
            run.flow_slug,
            styled_status(run.status),
            _ago(run.started_at),
            _duration(run.duration),
            Text((run.error_message or "")[:60]),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


def timeline_bar(
    start: datetime | None,
    end: datetime | None,
    axis: tuple[datetime, datetime],
    width: int = TIMELINE_WIDTH,
) -> str:
    """A step's span as blocks on a shared axis (a small Gantt chart row): blank until the
    step started, at least one block long; empty for a step that never started."""
    axis_start, axis_end = axis
    if start is None:
        return ""
    span = (axis_end - axis_start).total_seconds()

    def column(moment: datetime) -> float:
        offset = (moment - axis_start).total_seconds()
        return width * min(max(offset / span, 0.0), 1.0) if span > 0 else 0.0

    first = min(int(column(start)), width - 1)
    last = max(first + 1, round(column(end or axis_end)))
    return " " * first + "█" * (last - first)


def tasks_done(tasks: tuple[TaskState, ...]) -> int:
    return sum(t.status == "completed" for t in tasks)


def most_attempts(tasks: tuple[TaskState, ...]) -> int:
    """A step's attempts: those of its most tried task (0 before any started)."""
    return max((t.attempts_count for t in tasks), default=0)


def run_payload(full: RunWithStates, *, include_tasks: bool = False) -> dict[str, Any]:
    """What ``pgflow run ID --json`` prints (``watch --json`` ends with it too)."""
    steps = []
    for step in full.steps:
        tasks = full.tasks_of(step.step_slug)
        steps.append(
            {
                "step_slug": step.step_slug,
                "step_type": step.step_type,
                "status": step.status,
                "tasks_done": tasks_done(tasks),
                "tasks_total": step.initial_tasks,
                "attempts": most_attempts(tasks),
                "duration_seconds": step.duration.total_seconds() if step.duration else None,
                "error_message": step.error_message,
                "skip_reason": step.skip_reason,
                "started_at": _iso(step.started_at),
                "completed_at": _iso(step.completed_at),
                "failed_at": _iso(step.failed_at),
                "skipped_at": _iso(step.skipped_at),
            }
        )
    payload: dict[str, Any] = {"run": full.run.as_dict(), "steps": steps}
    if include_tasks:
        payload["tasks"] = [
            {
                "step_slug": task.step_slug,
                "task_index": task.task_index,
                "status": task.status,
                "attempts": task.attempts_count,
                "queued_at": _iso(task.queued_at),
                "started_at": _iso(task.started_at),
                "completed_at": _iso(task.completed_at),
                "failed_at": _iso(task.failed_at),
                "error_message": task.error_message,
                "worker_id": str(task.last_worker_id) if task.last_worker_id else None,
            }
            for task in full.tasks
        ]
    return payload


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def styled_status(status: str) -> Text:
    """The status coloured by what it means."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def render_run(full: RunWithStates) -> Group:
    """A run's header line and its table of steps, with a timeline from the run's start to
    its end (or now while it runs)."""
    run: Run = full.run
    axis_end = run.completed_at or run.failed_at or run.cancelled_at or datetime.now(UTC)
    axis = (run.started_at, max(axis_end, run.started_at))
    header = Text.assemble(
        (run.flow_slug, "bold"),
        f" {run.run_id}  ",
        styled_status(run.status),
        f"  started {_ago(run.started_at)}, took {_duration(run.duration)}",
    )
    if run.cancelled_at is not None:
        header.append(f"\ncancelled {_ago(run.cancelled_at)}: {run.cancel_reason or 'no reason'}")
    if run.retry_of is not None:
        header.append(f"\nretry of {run.retry_of}")
    # Only the error may wrap: squeezed bars would no longer share one time axis.
    table = Table(
        *(
            Column(name, no_wrap=True)
            for name in ("step", "type", "status", "tasks", "attempts", "duration")
        ),
        Column(
            f"timeline 0-{_duration(axis[1] - axis[0])}", no_wrap=True, min_width=TIMELINE_WIDTH
        ),
        Column("error", overflow="fold"),
    )
    for step in full.steps:
        tasks = full.tasks_of(step.step_slug)
        total = "?" if step.initial_tasks is None else str(step.initial_tasks)
        attempts = most_attempts(tasks)
        ended = step.completed_at or step.failed_at or step.skipped_at
        bar = timeline_bar(step.started_at, ended, axis)
        retries = f" ↻{attempts}" if attempts > 1 else ""
        table.add_row(
            step.step_slug,
            step.step_type,
            styled_status(step.status),
            f"{tasks_done(tasks)}/{total}",
            str(attempts),
            _duration(step.duration),
            Text(bar, style=STATUS_STYLE.get(step.status, "")) + retries,
            _step_note(step),
        )
    return Group(header, table)


def _step_note(step: StepState) -> Text:
    """The error column: a skipped step's reason (and the error that led to it, if any)."""
    error = (step.error_message or "")[:60]
    if step.skip_reason is None:
        return Text(error)
    skipped = Text(f"skipped: {step.skip_reason}", style=STATUS_STYLE["skipped"])
    return skipped + f" ({error})" if error else skipped


def render_tasks(full: RunWithStates) -> Table:
    """One row per task; a step with many tasks (a map) gets one summary row plus a row for
    each failed task."""
    table = Table("step", "task", "status", "attempts", "duration", "worker", "error")
    for step in full.steps:
        tasks = full.tasks_of(step.step_slug)
        if len(tasks) <= TASKS_SHOWN_PER_STEP:
            shown = tasks
        else:
            counts = Counter(t.status for t in tasks)
            durations = [d for d in map(_task_duration, tasks) if d is not None]
            table.add_row(
                step.step_slug,
                f"0-{len(tasks) - 1}",
                Text(", ").join(
                    Text.assemble(f"{n} ", styled_status(status))
                    for status, n in sorted(counts.items())
                ),
                str(most_attempts(tasks)),
                f"{_duration(min(durations))} - {_duration(max(durations))}" if durations else "-",
                f"{len({t.last_worker_id for t in tasks if t.last_worker_id})} worker(s)",
                "",
            )
            shown = tuple(t for t in tasks if t.status == "failed")
        for task in shown:
            table.add_row(
                task.step_slug,
                str(task.task_index),
                styled_status(task.status),
                str(task.attempts_count),
                _duration(_task_duration(task)),
                str(task.last_worker_id)[:8] if task.last_worker_id else "-",
                Text((task.error_message or "")[:60]),
            )
    return table


def _task_duration(task: TaskState) -> timedelta | None:
    end = task.completed_at or task.failed_at
    return end - task.started_at if task.started_at is not None and end is not None else None


@one_line_errors
def run_command(
    run_id: Annotated[str, typer.Argument(help="The run's id.", show_default=False)],
    database_url_flag: DatabaseUrlOption = None,
    tasks: Annotated[
        bool, typer.Option("--tasks", help="List the tasks too (maps are summarised).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one run: its steps with status, tasks, attempts, duration, timeline and errors."""
    parsed = parse_run_id(run_id)
    with Client(database_url(database_url_flag), max_pool_size=1, listen=False) as client:
        full = client.get_run_with_states(parsed)
    if as_json:
        typer.echo(json.dumps(run_payload(full, include_tasks=tasks), indent=2))
        return
    console.print(render_run(full), highlight=False)
    if tasks:
        console.print(render_tasks(full), highlight=False)


def parse_run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise fail(f"not a run id (a UUID): {text!r}") from None
