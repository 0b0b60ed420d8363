"""The worker: polls flows' queues, runs handlers, reports back to the SQL core."""

from __future__ import annotations

from pgflow.worker._background import background_worker
from pgflow.worker._execute import MAX_ERROR_LENGTH, TaskTimeoutError
from pgflow.worker._worker import EVENTS_CHANNEL, Worker, WorkerOptions

__all__ = [
    "EVENTS_CHANNEL",
    "MAX_ERROR_LENGTH",
    "TaskTimeoutError",
    "Worker",
    "WorkerOptions",
    "background_worker",
]
