"""Typed views of runs, steps and tasks, built from rows of the pgflow tables."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

RUN_STATUSES = ("started", "completed", "failed")


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

    @property
    def is_terminal(self) -> bool:
        return self.status in ("completed", "failed")

    @property
    def duration(self) -> timedelta | None:
        return _duration(self.started_at, self.completed_at or self.failed_at)

    def as_dict(self) -> dict[str, Any]:
        converted: dict[str, Any] = _jsonable(asdict(self))
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
        )


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

    @property
    def duration(self) -> timedelta | None:
        return _duration(self.started_at, self.completed_at or self.failed_at)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StepState:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})


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


def encode_cursor(run: Run) -> str:
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, UUID)):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
