"""Run a worker beside test code: in a thread with its own event loop, for sync tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job
from pgflow.worker import Worker, background_worker


@contextlib.contextmanager
def running_worker(
    flows: Iterable[Flow[Any] | Job[Any, Any]], database_url: str, **options: Any
) -> Iterator[Worker]:
    """A started worker for the duration of the block (stopped, drained, on exit), polling
    often and without per-minute summaries, as suits a test."""
    options.setdefault("poll_interval", 0.2)
    options.setdefault("summary_interval", 3600)
    with background_worker(flows, database_url, **options) as worker:
        yield worker
