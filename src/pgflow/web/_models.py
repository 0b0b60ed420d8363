"""What the dashboard's API returns: pydantic models, so that the OpenAPI schema is exact.

The pages render the same objects, so the JSON API and the HTML always show the same data.
Durations are in seconds; statuses are plain strings because the SQL core may add new ones.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunSummary(_Model):
    run_id: uuid.UUID
    flow_slug: str
    status: str
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    duration: float | None = Field(description="Seconds from start to completion or failure.")
    remaining_steps: int
    error: str | None = Field(description="The error of the step that failed the run.")
    cancelled_at: datetime | None = Field(default=None, description="When it was cancelled.")
    cancel_reason: str | None = Field(default=None, description="Why it was cancelled.")


class RunPage(_Model):
    runs: list[RunSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class TaskStatus(_Model):
    step_slug: str
    task_index: int
    status: str
    attempts: int
    message_id: int | None
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    duration: float | None
    output: Any
    error: str | None
    worker_id: uuid.UUID | None


class StepStatus(_Model):
    step_slug: str
    step_type: str
    step_index: int
    deps: list[str] = Field(description="The steps this one depends on (the DAG's edges).")
    status: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    duration: float | None
    attempts: int = Field(description="The most attempts any of the step's tasks took.")
    tasks_total: int | None = Field(description="Unknown (null) until a map step starts.")
    tasks_done: int
    tasks_failed: int
    output: Any = Field(description="The task's output; for a map step, the list of outputs.")
    error: str | None
    skip_reason: str | None = Field(
        default=None,
        description="Why a skipped step was skipped: condition_unmet, handler_failed or "
        "dependency_skipped.",
    )
    skipped_at: datetime | None = None


class RunDetail(RunSummary):
    input: Any
    output: Any
    retry_of: uuid.UUID | None = Field(default=None, description="The run this one retries.")
    steps: list[StepStatus]
    tasks: list[TaskStatus]


class FlowStats(_Model):
    """The flow's runs that started within the window of the request."""

    runs: int
    completed: int
    failed: int
    running: int
    success_rate: float | None = Field(description="completed / (completed + failed).")
    p50_duration: float | None = Field(description="Of the completed runs, in seconds.")
    p95_duration: float | None = Field(description="Of the completed runs, in seconds.")


class FlowStep(_Model):
    step_slug: str
    step_type: str
    step_index: int
    deps: list[str]
    options: dict[str, int | None] = Field(description="The step's own options; null inherits.")
    when: dict[str, Any] | None = Field(
        default=None, description="A JSON pattern the step's input must contain to run."
    )
    unless: dict[str, Any] | None = Field(
        default=None, description="A JSON pattern the step's input must not contain to run."
    )
    when_unmet: str = Field(default="skip", description="fail, skip or skip-cascade.")
    when_exhausted: str = Field(default="fail", description="fail, skip or skip-cascade.")


class FlowSummary(_Model):
    flow_slug: str
    options: dict[str, int] = Field(description="max_attempts, base_delay (s), timeout (s).")
    created_at: datetime
    steps: list[FlowStep]
    stats: FlowStats


class FlowDetail(FlowSummary):
    recent_runs: list[RunSummary]


class WorkerInfo(_Model):
    worker_id: uuid.UUID
    flow_slug: str
    function_name: str
    started_at: datetime
    last_heartbeat_at: datetime
    deprecated_at: datetime | None
    stopped_at: datetime | None
    heartbeat_age: float = Field(description="Seconds since the last heartbeat.")
    status: str = Field(description="alive, silent, deprecated or stopped.")


class DurationStats(_Model):
    count: int
    avg: float | None
    p50: float | None
    p95: float | None
    max: float | None


class StepDurations(_Model):
    flow_slug: str
    step_slug: str
    count: int
    avg: float
    p95: float
    max: float


class FailureReason(_Model):
    error: str | None
    count: int


class MetricsBucket(_Model):
    """The runs that started within ``[start, start + bucket_seconds)``."""

    start: datetime
    started: int
    completed: int
    failed: int
    p95_duration: float | None = Field(description="Of the completed runs, in seconds.")


class Metrics(_Model):
    """Runs started in ``[since, until)``: totals, and the same cut into time buckets."""

    since: datetime
    until: datetime
    flow: str | None
    total_runs: int
    completed: int
    failed: int
    running: int
    success_rate: float | None
    run_duration: DurationStats
    throughput_per_minute: float
    slowest_steps: list[StepDurations]
    failure_reasons: list[FailureReason]
    bucket_seconds: float
    buckets: list[MetricsBucket]


class Schedule(_Model):
    name: str
    flow_slug: str
    cron: str
    timezone: str
    input: Any = Field(description="The input of the runs it starts.")
    enabled: bool
    max_catch_up: int
    created_at: datetime
    updated_at: datetime
    last_occurrence_at: datetime | None = Field(description="The latest occurrence fired.")
    next_occurrence_at: datetime | None = Field(
        description="The next occurrence after now; null when disabled."
    )
    overdue_since: datetime | None = Field(
        description="The oldest occurrence that is due but not fired yet (no worker serves "
        "the flow, or it is late)."
    )


class Health(_Model):
    healthy: bool
    database: bool
    server_version: str | None
    schema_up_to_date: bool
    pgmq_version: str | None
    live_workers: dict[str, int]
    queue_depths: dict[str, int]
    oldest_message_age: dict[str, float]
    problems: list[str]
    events_listening: bool = Field(description="This server's LISTEN connection is up.")


class StartRun(_Model):
    input: Any = Field(default=None, description="The run input (any JSON value).")


class Problem(_Model):
    detail: str
