"""Monitoring from the pgflow tables, the single source of truth: run and step status, run
listings and history, metrics over a window, queues, workers and flows; sync and async.

Definitions: a metrics window is the runs *started* in ``[since, until)``; a step's duration
runs from its start to its completion; percentiles are exact and interpolated
(``percentile_cont``); a worker is live with a heartbeat in the last 30 s and neither
deprecated nor stopped.

Indexes the queries rely on (range or index-only scans, fast with millions of runs):

* ``idx_runs_started_at`` (0003) and ``idx_runs_flow_started_at`` (0003, made covering by
  0004: INCLUDE status, completed_at, failed_at): ``list_runs`` pages, and the run outcomes
  and busy hours of ``metrics`` (index-only, one range per flow);
* ``idx_runs_status_started_at`` and ``idx_runs_flow_status_started_at`` (0004): ``list_runs``
  with a status, with or without a flow, however rare the status;
* ``idx_runs_finished_at`` (0004, on ``coalesce(completed_at, failed_at)``): ``history``;
* ``idx_step_states_completed_by_creation`` (0004, on ``(flow_slug, step_slug, created_at)``,
  covering, completed steps): step durations, one range per step, no join to runs (a run's
  step states are created with it, so their created_at is its start);
* ``idx_step_states_failed_by_creation`` (0004, ``(flow_slug, created_at)``, failed steps):
  failure reasons;
* ``step_states_pkey`` and ``step_tasks_pkey`` prefixes for one run's status; ``pgflow.workers``
  (small) is read whole; each flow's queue depth is a count of its ``pgmq.q_<flow>`` table.
"""

from __future__ import annotations

from pgflow.monitor._async import AsyncMonitor
from pgflow.monitor._listeners import (
    EVENT_TYPES,
    AsyncListener,
    Listener,
    ListenerEvent,
)
from pgflow.monitor._models import (
    BusyHour,
    DurationStats,
    FailureReason,
    FlowInfo,
    FlowStepInfo,
    Metrics,
    QueueInfo,
    RunStatus,
    RunStatusPage,
    RunSummary,
    StepDurations,
    StepStatus,
    TaskStatus,
    WorkerInfo,
)
from pgflow.monitor._prometheus import PgflowCollector, make_asgi_app, register
from pgflow.monitor._sync import Monitor

__all__ = [
    "EVENT_TYPES",
    "AsyncListener",
    "AsyncMonitor",
    "BusyHour",
    "DurationStats",
    "FailureReason",
    "FlowInfo",
    "FlowStepInfo",
    "Listener",
    "ListenerEvent",
    "Metrics",
    "Monitor",
    "PgflowCollector",
    "QueueInfo",
    "RunStatus",
    "RunStatusPage",
    "RunSummary",
    "StepDurations",
    "StepStatus",
    "TaskStatus",
    "WorkerInfo",
    "make_asgi_app",
    "register",
]
