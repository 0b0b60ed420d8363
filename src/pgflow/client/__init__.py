"""The client API: start runs, wait for them, read their state, schedule jobs, maintain."""

from __future__ import annotations

from pgflow._schedule_ops import Schedule
from pgflow.client._async import AsyncClient, AsyncRunHandle
from pgflow.client._models import (
    HealthReport,
    PruneResult,
    Run,
    RunPage,
    RunWithStates,
    StepState,
    TaskState,
)
from pgflow.client._sync import Client, RunHandle

__all__ = [
    "AsyncClient",
    "AsyncRunHandle",
    "Client",
    "HealthReport",
    "PruneResult",
    "Run",
    "RunHandle",
    "RunPage",
    "RunWithStates",
    "Schedule",
    "StepState",
    "TaskState",
]
