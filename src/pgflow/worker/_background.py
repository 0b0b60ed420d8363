"""A worker beside synchronous code: in a thread with its own event loop.

For scripts, sync web applications and the demo, where there is no event loop to embed
``async with Worker(...)`` in::

    with background_worker([flow]) as worker:
        ...  # the worker serves the flows until the block exits (then drains and stops)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job
from pgflow.worker._worker import Worker

#: How long to wait for the worker to start, and to drain and stop at the end.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 120.0


@contextlib.contextmanager
def background_worker(
    flows: Iterable[Flow[Any] | Job[Any, Any]], database_url: str | None = None, **options: Any
) -> Iterator[Worker]:
    """A started worker for the duration of the block, stopped and drained on exit.

    ``database_url`` follows the usual rule when None; ``options`` are ``WorkerOptions`` fields.
    A worker that cannot start (bad options, no schema) raises here, in the caller's thread.
    """
    worker = Worker(list(flows), database_url=database_url, **options)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await worker.start()
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        await worker.wait()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(main(),), name="pgflow-worker", daemon=True
    )
    thread.start()
    started.wait(START_TIMEOUT)
    if failure:
        thread.join(STOP_TIMEOUT)
        loop.close()
        raise failure[0]
    try:
        yield worker
    finally:
        asyncio.run_coroutine_threadsafe(worker.stop(), loop).result(STOP_TIMEOUT)
        thread.join(30)
        loop.close()
