"""What the monitor reports: frozen dataclasses, each with ``as_dict()`` giving JSON-ready data
(ISO times, UUIDs as text, durations in seconds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pgflow.client._models import jsonable, run_control_fields


def _duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    return end - start if start is not None and end is not None else None


class _Serialisable:
    def as_dict(self) -> dict[str, Any]:
        converted: dict[str, Any] = jsonable(asdict(self))  # type: ignore[call-overload]
        return converted


@dataclass(frozen=True)
class TaskStatus(_Serialisable):
    step_slug: str
    task_index: int
    status: str
    attempts: int
    message_id: int | None
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    duration: timedelta | None
    output: Any
    error: str | None
    worker_id: UUID | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TaskStatus:
        duration = _duration(row["started_at"], row["completed_at"] or row["failed_at"])
        return cls(**{**row, "duration": duration})


@dataclass(frozen=True)
class StepStatus(_Serialisable):
    step_slug: str
    step_type: str
    step_index: int
    status: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    duration: timedelta | None
    #: The most attempts any of the step's tasks needed (0 before one started).
    attempts: int
    #: initial_tasks: None for a map step until its input array is known.
    tasks_total: int | None
    tasks_done: int
    tasks_failed: int
    output: Any
    error: str | None
    #: Set on a 'skipped' step (conditional steps): condition_unmet, handler_failed or
    #: dependency_skipped, and when. None otherwise, and on cores without conditional steps.
    skip_reason: str | None = None
    skipped_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StepStatus:
        # None for a skipped step: it has neither completed_at nor failed_at.
        duration = _duration(row["started_at"], row["completed_at"] or row["failed_at"])
        return cls(**{**row, "duration": duration})


@dataclass(frozen=True)
class RunSummary(_Serialisable):
    run_id: UUID
    flow_slug: str
    status: str
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    duration: timedelta | None
    remaining_steps: int
    #: The error of the step that failed the run (None unless failed).
    error: str | None
    #: When the run was cancelled, and why (None unless cancelled).
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunSummary:
        control = run_control_fields(row.get("run_control") or row)
        ended = row["completed_at"] or row["failed_at"] or control["cancelled_at"]
        return cls(
            run_id=row["run_id"],
            flow_slug=row["flow_slug"],
            status=row["status"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            failed_at=row["failed_at"],
            duration=_duration(row["started_at"], ended),
            remaining_steps=row["remaining_steps"],
            error=row["error_message"],
            cancelled_at=control["cancelled_at"],
            cancel_reason=control["cancel_reason"],
        )


@dataclass(frozen=True)
class RunStatus(_Serialisable):
    run_id: UUID
    flow_slug: str
    status: str
    input: Any
    output: Any
    error: str | None
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    duration: timedelta | None
    remaining_steps: int
    steps: tuple[StepStatus, ...]
    #: Every task of the run, when asked for (``include_tasks=True``), else None.
    tasks: tuple[TaskStatus, ...] | None = None
    #: Run control (``cancel_run``, ``retry_run``, ``resume_run``): when and why the run was
    #: cancelled, the run it retries, how often it was resumed and when last.
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    retry_of: UUID | None = None
    resumed_count: int = 0
    resumed_at: datetime | None = None

    def step(self, slug: str) -> StepStatus:
        for step in self.steps:
            if step.step_slug == slug:
                return step
        raise KeyError(f"run {self.run_id} has no step {slug!r}")


@dataclass(frozen=True)
class RunStatusPage(_Serialisable):
    """One page of :meth:`Monitor.list_runs`; pass ``next_cursor`` back for the next page."""

    runs: tuple[RunSummary, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class DurationStats(_Serialisable):
    """Durations in seconds; percentiles are exact and interpolated (``percentile_cont``).
    All None when ``count`` is 0."""

    count: int
    avg: float | None
    p50: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True)
class StepDurations(_Serialisable):
    """Durations (seconds) of one step's completed step states in the window."""

    flow_slug: str
    step_slug: str
    count: int
    avg: float
    p95: float
    max: float


@dataclass(frozen=True)
class FailureReason(_Serialisable):
    error: str | None
    count: int


@dataclass(frozen=True)
class BusyHour(_Serialisable):
    #: The start of the hour, UTC.
    hour: datetime
    runs: int


@dataclass(frozen=True)
class QueueInfo(_Serialisable):
    flow_slug: str
    #: Messages in the flow's queue, visible or not.
    depth: int
    #: Messages a worker could read now.
    visible: int
    #: Seconds since the oldest message was enqueued; None when the queue is empty.
    oldest_message_age: float | None


@dataclass(frozen=True)
class WorkerInfo(_Serialisable):
    worker_id: UUID
    flow_slug: str
    function_name: str
    started_at: datetime
    last_heartbeat_at: datetime
    deprecated_at: datetime | None
    stopped_at: datetime | None
    #: Seconds since the last heartbeat.
    heartbeat_age: float
    #: 'alive', 'silent' (no recent heartbeat), 'deprecated' or 'stopped'.
    status: str


@dataclass(frozen=True)
class FlowStepInfo(_Serialisable):
    step_slug: str
    step_type: str
    step_index: int
    deps: tuple[str, ...]
    #: The step's own options (max_attempts, base_delay, timeout, start_delay); None inherits.
    options: dict[str, int | None]
    #: Its condition: a JSON pattern its input must contain (``when``) or must not contain
    #: (``unless``), and what an unmet condition or a task out of attempts does ('fail',
    #: 'skip', 'skip-cascade'). The defaults are those of a step without a condition, and what
    #: a core without conditional steps reports.
    when: dict[str, Any] | None = None
    unless: dict[str, Any] | None = None
    when_unmet: str = "skip"
    when_exhausted: str = "fail"

    @property
    def has_condition(self) -> bool:
        return self.when is not None or self.unless is not None


@dataclass(frozen=True)
class FlowInfo(_Serialisable):
    flow_slug: str
    #: max_attempts, base_delay (s), timeout (s).
    options: dict[str, int]
    created_at: datetime
    steps: tuple[FlowStepInfo, ...]


@dataclass(frozen=True)
class Metrics(_Serialisable):
    """Runs started in ``[since, until)`` (of one flow, or all), as the tables have them now."""

    since: datetime
    until: datetime
    flow: str | None
    total_runs: int
    completed: int
    failed: int
    #: Still in progress (status 'started').
    running: int
    #: Every status seen, including ones newer cores add (such as 'cancelled').
    by_status: dict[str, int]
    #: completed / (completed + failed); None when none finished.
    success_rate: float | None
    #: Start to completion of the completed runs.
    run_duration: DurationStats
    #: Runs of the window that finished (completed or failed), per minute of the window.
    throughput_per_minute: float
    #: Every step's durations, by flow and step.
    steps: tuple[StepDurations, ...]
    #: The ``top`` steps with the highest p95 duration.
    slowest_steps: tuple[StepDurations, ...]
    #: The ``top`` most frequent errors of failed runs.
    failure_reasons: tuple[FailureReason, ...]
    #: The ``top`` hours with the most runs started.
    busy_hours: tuple[BusyHour, ...]
    #: The flows' queues now (not limited to the window).
    queues: tuple[QueueInfo, ...]
    #: Live workers per flow now.
    live_workers: dict[str, int]
