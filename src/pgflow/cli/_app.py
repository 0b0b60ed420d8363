"""The root ``pgflow`` command and its sub-commands."""

from __future__ import annotations

from typing import Annotated

import typer

from pgflow._version import __version__
from pgflow.cli import (
    _compile,
    _control,
    _dashboard,
    _db_commands,
    _demo,
    _flows,
    _health,
    _install,
    _metrics,
    _monitor,
    _runs,
    _schedules,
    _watch,
    _worker,
)

app = typer.Typer(
    name="pgflow",
    help="pgflow for Python: a Postgres-first workflow engine. All state lives in PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pgflow-py {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """pgflow for Python: a Postgres-first workflow engine."""


app.command("install")(_install.install_command)
app.command("status")(_install.status_command)
app.command("compile")(_compile.compile_command)
app.command("worker")(_worker.worker_command)
app.command("health")(_health.health_command)
app.command("runs")(_runs.runs_command)
app.command("run")(_runs.run_command)
app.command("watch")(_watch.watch_command)
app.command("cancel")(_control.cancel_command)
app.command("retry")(_control.retry_command)
app.command("resume")(_control.resume_command)
app.command("flows")(_flows.flows_command)
app.command("workers")(_monitor.workers_command)
app.command("stats")(_monitor.stats_command)
app.command("prune")(_monitor.prune_command)
app.command("dashboard")(_dashboard.dashboard_command)
app.command("demo")(_demo.demo_command)
app.add_typer(_db_commands.db_app, name="db")
app.add_typer(_schedules.schedules_app, name="schedules")
app.add_typer(_metrics.metrics_app, name="metrics")


def main() -> None:
    app()
