"""Run a worker beside test code: in a thread with its own event loop, for sync tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job
from pgflow.worker import Worker


@contextlib.contextmanager
def running_worker(
    flows: Iterable[Flow[Any] | Job[Any, Any]], database_url: str, **options: Any
) -> Iterator[Worker]:
    """A started worker for the duration of the block (stopped, drained, on exit)."""
    options.setdefault("poll_interval", 0.2)
    options.setdefault("summary_interval", 3600)
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

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        raise failure[0]
    try:
        yield worker
    finally:
        asyncio.run_coroutine_threadsafe(worker.stop(), loop).result(120)
        thread.join(30)
        loop.close()
