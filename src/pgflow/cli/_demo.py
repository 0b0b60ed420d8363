"""``pgflow demo``: everything a newcomer needs to see, in one command and a few seconds.

It finds the database (starting the embedded server when none is configured), installs or
updates the schema, makes sure the demo flow (:mod:`pgflow.demo`) exists, serves it from a
worker inside this process, starts a run and shows its progress live, then prints the run's
step table, its output and the commands to try next. The embedded server is left running so
that those commands find the run; ``pgflow db stop`` stops it.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console

from pgflow import demo
from pgflow._db import connect
from pgflow._embedded import EmbeddedServer
from pgflow.cli._common import (
    DatabaseUrlOption,
    console,
    err_console,
    fail,
    one_line_errors,
)
from pgflow.cli._runs import render_run, run_payload
from pgflow.cli._watch import follow_run, watch_run
from pgflow.client import Client, RunWithStates
from pgflow.config import DatabaseChoice, choose_database, redact
from pgflow.events import EventHub
from pgflow.installer import install_on
from pgflow.worker import background_worker

#: Give up on the run after this long; it takes a few seconds.
RUN_TIMEOUT = 60.0
#: How often the live view re-reads the run when no event arrives (map tasks complete without
#: one): often enough for the progress bar of the map step to move smoothly.
PROGRESS_POLL_INTERVAL = 0.2
#: The in-process worker: quick to notice the retried task, a few tasks at once so the map's
#: parallelism shows, a short drain at the end. The flow is ensured before it starts.
WORKER_OPTIONS: dict[str, Any] = {
    "max_concurrent": 4,
    "batch_size": 4,
    "poll_interval": 0.1,
    "shutdown_grace": 5.0,
    "ensure_flows": False,
    "scheduler": False,
    "function_name": "pgflow-demo",
}
DASHBOARD_URL = "http://127.0.0.1:8765"


@one_line_errors
def demo_command(
    database_url_flag: DatabaseUrlOption = None,
    items: Annotated[
        int,
        typer.Option(
            help="Articles to fetch, one map task each (one of them is retried).", min=1, max=1000
        ),
    ] = 12,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the finished run as JSON (progress goes to stderr)."),
    ] = False,
) -> None:
    """Run a demo flow end to end: database, schema, worker, a run with a retried map task.

    Without a configured database it starts the embedded PostgreSQL and leaves it running for
    the next commands (stop it with `pgflow db stop`). Safe to re-run. Exit code 0 when the
    run completed, 1 otherwise.
    """
    began = time.monotonic()
    narrator = err_console if as_json else console
    choice = choose_database(database_url_flag)
    url = _open_database(choice, narrator)
    with connect(url, autocommit=True) as conn:
        _say(narrator, f"schema: {install_on(conn).summary()}")
    with Client(url, max_pool_size=1, listen=False) as client:
        # The demo flow belongs to this package: when a new version changed its steps, it is
        # replaced (with its old runs) rather than refused.
        ensured = client.ensure_flow(demo.flow, recreate=True)
        _say(narrator, f"flow {demo.flow.slug}: {ensured.status}")
        with background_worker([demo.flow], url, **WORKER_OPTIONS):
            _say(narrator, f"worker started (in this process), serving {demo.flow.slug}")
            run_id = client.start_flow(demo.flow, {"articles": items}).run_id
            _say(narrator, f"run {run_id} started: fetch {items} articles, count their words")
            final = _follow(client, url, run_id, as_json)
    commands = _next_commands(choice, url, run_id)
    if as_json:
        payload = run_payload(final, include_tasks=True)
        payload |= {
            "database": {"source": choice.source, "url": redact(url)},
            "next": [command for command, _ in commands],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        _print_outcome(final, commands)
    _say(narrator, f"demo finished in {time.monotonic() - began:.1f} s; the worker has stopped")
    if final.run.status != "completed":
        raise fail(
            f"the demo run {final.run.status}: {final.run.error_message or 'see the table above'}"
        )


def _say(narrator: Console, message: str) -> None:
    narrator.print(f"[dim]•[/] {message}", highlight=False)


def _open_database(choice: DatabaseChoice, narrator: Console) -> str:
    """The URL to use, starting the embedded server (and saying so) when none is configured."""
    if choice.url is not None:
        _say(narrator, f"database: {redact(choice.url)} (from {_origin(choice)})")
        return choice.url
    server = EmbeddedServer()
    state = server.status()
    if state.running:
        _say(narrator, f"database: the embedded PostgreSQL in {server.data_dir}, running")
    else:
        first_time = "" if state.initialized else " (first time: creating it, a few seconds)"
        _say(
            narrator, f"database: starting the embedded PostgreSQL in {server.data_dir}{first_time}"
        )
    return server.start()


def _origin(choice: DatabaseChoice) -> str:
    return "--database-url" if choice.source == "flag" else f"${choice.source}"


def _follow(client: Client, url: str, run_id: uuid.UUID, as_json: bool) -> RunWithStates:
    """The run's final state; shown live on the console unless the output is JSON."""
    hub = EventHub(url)
    try:
        if as_json:
            *_, final = follow_run(
                client,
                run_id,
                timeout=RUN_TIMEOUT,
                events=hub,
                poll_interval=PROGRESS_POLL_INTERVAL,
            )
            return final
        return watch_run(
            client,
            run_id,
            console,
            RUN_TIMEOUT,
            events=hub,
            poll_interval=PROGRESS_POLL_INTERVAL,
        )
    finally:
        hub.close()


def _next_commands(choice: DatabaseChoice, url: str, run_id: uuid.UUID) -> list[tuple[str, str]]:
    """What to try next, each with what it shows. A database given with the flag is passed on
    (the environment variables and the embedded default are found again without it)."""
    database = f" -d {shlex.quote(redact(url))}" if choice.source == "flag" else ""
    commands = [
        (f"pgflow runs{database}", "the runs in this database, newest first"),
        (f"pgflow run {run_id}{database}", "this run again: steps, attempts, timeline"),
        (f"pgflow dashboard{database}", f"the web dashboard, at {DASHBOARD_URL}"),
        (
            f"pgflow worker pgflow.demo:flow{database}",
            "serve the demo flow from a worker of your own",
        ),
    ]
    if choice.is_embedded:
        commands.append(("pgflow db stop", "stop the embedded PostgreSQL (kept running for these)"))
    return commands


def _print_outcome(final: RunWithStates, commands: list[tuple[str, str]]) -> None:
    console.print(render_run(final), highlight=False)
    for task in final.tasks:
        if task.attempts_count > 1 and task.status == "completed":
            # The error of the last failed attempt stays on the task after it succeeds.
            console.print(
                f"[yellow]↻[/] {task.step_slug}[{task.task_index}] succeeded on attempt "
                f"{task.attempts_count}, after {task.error_message or 'a failure'}",
                highlight=False,
            )
    if final.run.output is not None:
        console.print("[bold]output[/]")
        console.print_json(data=final.run.output, sort_keys=True)
    console.print("[bold]next[/]")
    width = max(len(command) for command, _ in commands)
    for command, purpose in commands:
        console.print(f"  {command:<{width}}  [dim]{purpose}[/]", highlight=False)
