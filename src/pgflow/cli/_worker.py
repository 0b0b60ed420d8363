"""``pgflow worker``: run the handlers of flows."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from pgflow import _logging
from pgflow.cli._common import DatabaseUrlOption, database_url, one_line_errors
from pgflow.dsl import load_flows
from pgflow.worker import Worker, WorkerOptions


class LogFormat(StrEnum):
    text = "text"
    json = "json"


@one_line_errors
def worker_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="package.module:flow (a Flow, a Job, or a list of them), or package.module "
            "for all of its flows and jobs.",
            show_default=False,
        ),
    ],
    database_url_flag: DatabaseUrlOption = None,
    max_concurrent: Annotated[int, typer.Option(help="Tasks run at once, per flow.", min=1)] = 10,
    batch_size: Annotated[int, typer.Option(help="Messages read per poll.", min=1)] = 10,
    poll_interval: Annotated[
        float, typer.Option(help="Longest idle wait between polls, in seconds.", min=0.01)
    ] = 1.0,
    listen: Annotated[
        bool,
        typer.Option(
            help="Wake up on LISTEN/NOTIFY. Use --no-listen behind a transaction-mode pooler "
            "(PgBouncer, Supavisor), where LISTEN does not work; polling alone is used then."
        ),
    ] = True,
    pooler: Annotated[
        bool,
        typer.Option(
            help="Connected through a transaction-mode pooler: poll without LISTEN and use no "
            "server-side prepared statements."
        ),
    ] = False,
    shutdown_grace: Annotated[
        float, typer.Option(help="Seconds to let in-flight tasks finish on SIGTERM.", min=0)
    ] = 30.0,
    recovery_interval: Annotated[
        float, typer.Option(help="Seconds between stalled-task recovery rounds.", min=0.1)
    ] = 15.0,
    stalled_margin: Annotated[
        float,
        typer.Option(
            help="A task running longer than its step timeout plus this many seconds is "
            "considered abandoned by a dead worker and requeued.",
            min=0,
        ),
    ] = 30.0,
    name: Annotated[
        str | None,
        typer.Option(help="function_name in pgflow.workers (default pgflow-py@HOST)."),
    ] = None,
    recreate_flows: Annotated[
        bool,
        typer.Option(
            help="When a flow's steps changed, delete it WITH ITS RUNS and create it anew."
        ),
    ] = False,
    scheduler: Annotated[
        bool,
        typer.Option(
            help="Fire the cron schedules of these flows (every worker may; each occurrence "
            "starts one run). --no-scheduler leaves that to other workers."
        ),
    ] = True,
    batch_completions: Annotated[
        bool,
        typer.Option(
            help="Report tasks that finish while a report is in flight together, in one "
            "transaction. --no-batch-completions reports each task on its own."
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: Annotated[LogFormat, typer.Option(help="text or json.")] = LogFormat.text,
) -> None:
    """Run the handlers of the given flows until SIGTERM/SIGINT (or deprecation)."""
    _logging.configure(log_level, log_format.value)
    flows = [flow for target in targets for flow in load_flows(target)]
    worker = Worker(
        flows,
        database_url=database_url(database_url_flag),
        options=WorkerOptions(
            max_concurrent=max_concurrent,
            batch_size=batch_size,
            poll_interval=poll_interval,
            listen=listen,
            pooler=pooler,
            shutdown_grace=shutdown_grace,
            recovery_interval=recovery_interval,
            stalled_margin=stalled_margin,
            function_name=name,
            recreate_flows=recreate_flows,
            scheduler=scheduler,
            batch_completions=batch_completions,
        ),
    )
    raise typer.Exit(worker.run())
