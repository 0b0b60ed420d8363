"""Command line shared by the peer drivers: ``python DRIVER COMMAND [options]``.

The database URL comes from the environment variable ``PGFLOW_BENCH_PEER_URL`` (so that no
password shows in the process list).

The drivers run in the peers' own virtualenv (not the project's), so this file uses the
standard library only. Every command prints one JSON object on stdout:

* ``install``: the peer's schema into the (empty) database: ``{"version": ...}``;
* ``reset``: no jobs and no job history left, schema kept: ``{}``;
* ``enqueue --count N``: N no-op jobs queued: ``{"enqueued": N}``;
* ``consume --concurrency C --batch-size B``: the peer's own worker until the queue is empty,
  then exit: ``{"done": jobs run by this process}``;
* ``stats``: ``{"completed": N, "busy_seconds": S, "left": N}``, the busy window read from the
  peer's own tables (first job picked -> last job finished).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

#: Jobs per enqueue call, so a large backlog is not one huge statement.
ENQUEUE_CHUNK = 1000
#: The entrypoint / task name every peer's no-op job is registered under.
JOB_NAME = "bench_job"
URL_VARIABLE = "PGFLOW_BENCH_PEER_URL"

Command = Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]


def chunks(count: int) -> list[range]:
    """``range(count)`` cut into pieces of at most ENQUEUE_CHUNK."""
    return [
        range(first, min(count, first + ENQUEUE_CHUNK)) for first in range(0, count, ENQUEUE_CHUNK)
    ]


def main(description: str, commands: dict[str, Command]) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("command", choices=sorted(commands))
    parser.add_argument("--count", type=int, default=0, help="enqueue: jobs to queue")
    parser.add_argument("--concurrency", type=int, default=10, help="consume: jobs run at once")
    parser.add_argument("--batch-size", type=int, default=10, help="consume: jobs per fetch")
    args = parser.parse_args()
    args.url = os.environ.get(URL_VARIABLE)
    if not args.url:
        parser.error(f"${URL_VARIABLE} must hold the postgresql:// URL of the peer's database")
    print(json.dumps(asyncio.run(commands[args.command](args))), flush=True)
