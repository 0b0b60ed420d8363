"""``pgflow watch ID``: a run's progress, live, until it ends.

The pieces are separate so that other views (the demo) can reuse them: ``follow_run`` /
``afollow_run`` yield the run's state each time it changes (woken by LISTEN events, polling
every second as a fallback), ``progress_changes`` turns two states into change records,
``render_progress`` draws one state, and ``watch_run`` puts them on a console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pgflow.cli._common import DatabaseUrlOption, console, database_url, fail, one_line_errors
from pgflow.cli._runs import (
    most_attempts,
    parse_run_id,
    render_run,
    run_payload,
    styled_status,
    tasks_done,
)
from pgflow.client import AsyncClient, Client, Run, RunWithStates
from pgflow.client._timing import deadline_after, remaining
from pgflow.errors import WaitTimeoutError
from pgflow.events import AsyncEventHub, EventHub

#: Seconds between reads when no event arrives: map tasks complete without an event, and a
#: listener that is down must not leave the view frozen.
POLL_INTERVAL = 1.0
#: Exit code of ``pgflow watch`` when ``--timeout`` passes before the run ends (as timeout(1)).
TIMEOUT_EXIT_CODE = 124


def run_finished(run: Run) -> bool:
    """Whether the run has ended. Any status but ``started`` is an end: besides completed and
    failed, newer cores add terminal statuses (cancelled) that must not make a watch hang."""
    return run.status != "started"


@dataclass(frozen=True)
class StepProgress:
    """What a watcher sees of one step; a change in any field is a change worth showing."""

    step_slug: str
    step_type: str
    status: str
    tasks_done: int
    tasks_total: int | None
    attempts: int


def step_progress(state: RunWithStates) -> tuple[StepProgress, ...]:
    progress = []
    for step in state.steps:
        tasks = state.tasks_of(step.step_slug)
        progress.append(
            StepProgress(
                step_slug=step.step_slug,
                step_type=step.step_type,
                status=step.status,
                tasks_done=tasks_done(tasks),
                tasks_total=step.initial_tasks,
                attempts=most_attempts(tasks),
            )
        )
    return tuple(progress)


def _fingerprint(state: RunWithStates) -> tuple[str, tuple[StepProgress, ...]]:
    return state.run.status, step_progress(state)


def progress_changes(before: RunWithStates | None, after: RunWithStates) -> list[dict[str, Any]]:
    """Change records (JSON-ready) from ``before`` to ``after``: each step whose progress
    changed, then the run when its status changed; everything when ``before`` is None."""
    old_steps = {p.step_slug: p for p in step_progress(before)} if before else {}
    changes: list[dict[str, Any]] = [
        {"event": "step", "run_id": str(after.run.run_id), **asdict(p)}
        for p in step_progress(after)
        if old_steps.get(p.step_slug) != p
    ]
    if before is None or before.run.status != after.run.status:
        changes.append(
            {"event": "run", "run_id": str(after.run.run_id), "status": after.run.status}
        )
    return changes


def render_progress(state: RunWithStates) -> Group:
    """One line per step: its status, and for a map step a bar of done/total tasks."""
    run = state.run
    header = Text.assemble(
        (run.flow_slug, "bold"),
        f" {run.run_id}  ",
        styled_status(run.status),
        f"  {run.remaining_steps} step(s) to go",
    )
    grid = Table.grid(padding=(0, 2))
    for progress in step_progress(state):
        total = progress.tasks_total
        bar: ProgressBar | str = ""
        if progress.step_type == "map" and total is not None:
            # An empty map is done at once: show it full rather than a bar of nothing.
            bar = ProgressBar(
                total=max(total, 1),
                completed=progress.tasks_done if total else int(progress.status == "completed"),
                width=30,
                complete_style="yellow",
                finished_style="green",
            )
        grid.add_row(
            progress.step_slug,
            styled_status(progress.status),
            bar,
            f"{progress.tasks_done}/{'?' if total is None else total}",
            f"↻{progress.attempts}" if progress.attempts > 1 else "",
        )
    return Group(header, grid)


def follow_run(
    client: Client,
    run_id: uuid.UUID,
    *,
    timeout: float | None = None,
    events: EventHub | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> Iterator[RunWithStates]:
    """The run's state now and after each change, ending with its final state. Each event of
    the run (from ``events``) triggers a read, and so does every ``poll_interval`` without
    one. Raises :class:`WaitTimeoutError` when ``timeout`` seconds pass first, and
    ``RunNotFoundError`` for an unknown run."""
    deadline = deadline_after(timeout)
    subscription = events.subscribe(run_id) if events else contextlib.nullcontext(None)
    with subscription as sink:  # subscribed before the first read: no change slips between
        seen = None
        while True:
            state = client.get_run_with_states(run_id)
            if _fingerprint(state) != seen:
                seen = _fingerprint(state)
                yield state
            if run_finished(state.run):
                return
            pause = _pause(deadline, timeout, state, poll_interval)
            if sink is None:
                time.sleep(pause)
                continue
            with contextlib.suppress(queue.Empty):
                sink.get(timeout=pause)
                while True:  # a burst of events needs one read, not one each
                    sink.get_nowait()


async def afollow_run(
    client: AsyncClient,
    run_id: uuid.UUID,
    *,
    timeout: float | None = None,
    events: AsyncEventHub | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> AsyncIterator[RunWithStates]:
    """:func:`follow_run` for an :class:`AsyncClient` and an :class:`AsyncEventHub`."""
    deadline = deadline_after(timeout)
    subscription = events.subscribe(run_id) if events else contextlib.nullcontext(None)
    async with subscription as sink:
        seen = None
        while True:
            state = await client.get_run_with_states(run_id)
            if _fingerprint(state) != seen:
                seen = _fingerprint(state)
                yield state
            if run_finished(state.run):
                return
            pause = _pause(deadline, timeout, state, poll_interval)
            if sink is None:
                await asyncio.sleep(pause)
                continue
            with contextlib.suppress(TimeoutError, asyncio.QueueEmpty):
                await asyncio.wait_for(sink.get(), pause)
                while True:
                    sink.get_nowait()


def _pause(
    deadline: float | None, timeout: float | None, state: RunWithStates, poll_interval: float
) -> float:
    """How long to wait for an event before reading again; raises once the deadline passed."""
    left = remaining(deadline)
    if left is not None and left <= 0:
        raise WaitTimeoutError(
            f"run {state.run.run_id} is still {state.run.status} after {timeout:g}s"
        )
    return poll_interval if left is None else min(poll_interval, left)


def watch_run(
    client: Client,
    run_id: uuid.UUID,
    console: Console,
    timeout: float | None = None,
    *,
    events: EventHub | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> RunWithStates:
    """Show the run's progress live on ``console`` until it ends; returns its final state.
    The live view is cleared at the end (callers print the outcome they want)."""
    final = None
    with Live(console=console, transient=True, auto_refresh=False) as live:
        for final in follow_run(
            client, run_id, timeout=timeout, events=events, poll_interval=poll_interval
        ):
            live.update(render_progress(final), refresh=True)
    assert final is not None  # follow_run yields at least the state it first reads
    return final


def _now() -> str:
    return datetime.now(UTC).isoformat()


@one_line_errors
def watch_command(
    run_id: Annotated[str, typer.Argument(help="The run's id.", show_default=False)],
    database_url_flag: DatabaseUrlOption = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Give up after this many seconds (exit 124).", show_default=False),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON line per change, then the run as JSON."),
    ] = False,
) -> None:
    """Follow a run live until it ends, then show its steps.

    Exit code 0 when the run completed, 1 when it failed (or ended otherwise, e.g.
    cancelled), 124 when --timeout passed first.
    """
    parsed = parse_run_id(run_id)
    url = database_url(database_url_flag)
    hub = EventHub(url)
    try:
        with Client(url, max_pool_size=1, listen=False) as client:
            try:
                if as_json:
                    final = _print_changes(client, parsed, timeout, hub)
                else:
                    final = watch_run(client, parsed, console, timeout, events=hub)
            except WaitTimeoutError as exc:
                if not as_json:  # where it got to (--json printed that line by line)
                    console.print(render_run(client.get_run_with_states(parsed)))
                raise fail(str(exc), TIMEOUT_EXIT_CODE) from None
            if not as_json:
                console.print(render_run(final))
    finally:
        hub.close()
    if final.run.status != "completed":
        raise typer.Exit(1)


def _print_changes(
    client: Client, run_id: uuid.UUID, timeout: float | None, hub: EventHub
) -> RunWithStates:
    previous = None
    for state in follow_run(client, run_id, timeout=timeout, events=hub):
        for change in progress_changes(previous, state):
            print(json.dumps({**change, "at": _now()}), flush=True)
        previous = state
    assert previous is not None  # follow_run yields at least the state it first reads
    print(json.dumps(run_payload(previous)), flush=True)
    return previous
