"""``pgflow metrics serve``: a Prometheus exporter for the pgflow tables."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry, start_http_server

from pgflow.cli._common import DatabaseUrlOption, database_url, err_console, fail, one_line_errors
from pgflow.monitor._prometheus import register

metrics_app = typer.Typer(
    help="Prometheus metrics of runs, steps, queues and workers.", no_args_is_help=True
)


@metrics_app.command("serve")
@one_line_errors
def serve_command(
    database_url_flag: DatabaseUrlOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 9464,
    window: Annotated[
        float,
        typer.Option(help="Seconds of recent runs that run and step figures cover.", min=1),
    ] = 3600.0,
) -> None:
    """Serve /metrics until interrupted (SIGINT or SIGTERM); the database is read at each
    scrape, and a scrape that cannot read it reports pgflow_up 0."""
    registry = CollectorRegistry()
    collector = register(registry, database_url(database_url_flag), window=window)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stopped = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    err_console.print(
        f"serving pgflow metrics on http://{host}:{server.server_port}/metrics", highlight=False
    )
    try:
        while thread.is_alive() and not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        collector.close()
