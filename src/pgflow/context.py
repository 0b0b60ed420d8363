"""What a handler may know about the task it runs: the optional last parameter of a handler."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass
class Context:
    """Facts about the running task, handed to handlers that declare a ``ctx`` parameter.

    ``input`` is the task input exactly as the SQL core assembled it (``{"run": …, dep: …}`` for
    a single step, the element for a map step); ``attempt`` counts from 1.
    """

    run_id: UUID
    flow_slug: str
    step_slug: str
    task_index: int
    attempt: int
    flow_input: Any
    input: Any
    worker_id: UUID | None = None
    msg_id: int | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("pgflow.task"))
    shutdown: threading.Event = field(default_factory=threading.Event)
    conn: Any = None
    #: Set by the worker within about a second of the run being cancelled (``cancel_run``).
    cancellation: threading.Event = field(default_factory=threading.Event)

    @property
    def shutdown_requested(self) -> bool:
        """True once the worker was asked to stop; long handlers should wrap up."""
        return self.shutdown.is_set()

    @property
    def cancelled(self) -> bool:
        """True once the run of this task was cancelled: its result is no longer wanted
        (reporting it changes nothing), so a long handler should stop early. The worker never
        interrupts a handler for this, async ones included: stopping is the handler's call,
        so it can leave what it was doing in a clean state."""
        return self.cancellation.is_set()
