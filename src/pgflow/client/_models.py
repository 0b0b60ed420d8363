"""Typed views of runs, steps and tasks, built from rows of the pgflow tables."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

RUN_STATUSES = ("started", "completed", "failed", "cancelled")
#: Statuses a run does not leave by itself (resume_run may start a failed or cancelled one again).
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled"})


def _duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    return end - start if start is not None and end is not None else None


@dataclass(frozen=True)
class Run:
    run_id: UUID
    flow_slug: str
    status: str
    input: Any
    output: Any
    remaining_steps: int
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    #: The error of the step that failed the run (None unless failed).
    error_message: str | None = None
    #: Set while the run is cancelled: when, and the reason given (if any).
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    #: The failed or cancelled run this one retries (``retry_run``), if any.
    retry_of: UUID | None = None
    #: How often ``resume_run`` continued this run, and when it last did.
    resumed_count: int = 0
    resumed_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def duration(self) -> timedelta | None:
        return _duration(self.started_at, self.completed_at or self.failed_at or self.cancelled_at)

    def as_dict(self) -> dict[str, Any]:
        converted: dict[str, Any] = jsonable(asdict(self))
        return converted

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        return cls(
            run_id=row["run_id"],
            flow_slug=row["flow_slug"],
            status=row["status"],
            input=row["input"],
            output=row["output"],
            remaining_steps=row["remaining_steps"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            failed_at=row["failed_at"],
            error_message=row.get("error_message"),
            **run_control_fields(row.get("run_control") or row),
        )


def run_control_fields(found: dict[str, Any]) -> dict[str, Any]:
    """The run-control fields from table columns, or from their JSON form (as read from a
    core that may predate them, where they are absent)."""

    def timestamp(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else value

    retry_of = found.get("retry_of")
    return {
        "cancelled_at": timestamp(found.get("cancelled_at")),
        "cancel_reason": found.get("cancel_reason"),
        "retry_of": UUID(retry_of) if isinstance(retry_of, str) else retry_of,
        "resumed_count": int(found.get("resumed_count") or 0),
        "resumed_at": timestamp(found.get("resumed_at")),
    }


@dataclass(frozen=True)
class StepState:
    step_slug: str
    step_type: str
    step_index: int
    status: str
    remaining_deps: int
    remaining_tasks: int | None
    initial_tasks: int | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    #: Set on a 'skipped' step (conditional steps): condition_unmet, handler_failed or
    #: dependency_skipped, and when. None on cores without conditional steps.
    skip_reason: str | None = None
    skipped_at: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        return _duration(self.started_at, self.completed_at or self.failed_at or self.skipped_at)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StepState:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__ if f in row})


@dataclass(frozen=True)
class TaskState:
    step_slug: str
    task_index: int
    status: str
    attempts_count: int
    message_id: int | None
    error_message: str | None
    output: Any
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    last_worker_id: UUID | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TaskState:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunWithStates:
    run: Run
    steps: tuple[StepState, ...]
    tasks: tuple[TaskState, ...]

    def step(self, slug: str) -> StepState:
        for step in self.steps:
            if step.step_slug == slug:
                return step
        raise KeyError(f"run {self.run.run_id} has no step {slug!r}")

    def tasks_of(self, slug: str) -> tuple[TaskState, ...]:
        return tuple(t for t in self.tasks if t.step_slug == slug)


@dataclass(frozen=True)
class RunPage:
    """One page of :meth:`list_runs`; pass ``next_cursor`` back for the next page."""

    runs: tuple[Run, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class PruneResult:
    runs: int
    step_states: int
    step_tasks: int
    workers: int
    archived_messages: int


@dataclass(frozen=True)
class HealthReport:
    database: bool
    server_version: str | None = None
    schema_up_to_date: bool = False
    applied_migrations: tuple[str, ...] = ()
    pending_migrations: tuple[str, ...] = ()
    pgmq_version: str | None = None
    live_workers: dict[str, int] = field(default_factory=dict)
    queue_depths: dict[str, int] = field(default_factory=dict)
    oldest_message_age: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.database and self.schema_up_to_date and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


class KeysetPosition(Protocol):
    """What a page of runs is keyed on: any run view with these two fields."""

    @property
    def started_at(self) -> datetime: ...

    @property
    def run_id(self) -> UUID: ...


def encode_cursor(run: KeysetPosition) -> str:
    raw = json.dumps([run.started_at.isoformat(), str(run.run_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    from pgflow.errors import InvalidInputError

    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        started, run_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(started), UUID(run_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"invalid cursor {cursor!r}: {exc}") from None


def jsonable(value: Any) -> Any:
    """``value`` with times as ISO text, UUIDs as text and durations as seconds."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, UUID)):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
