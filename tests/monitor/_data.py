"""Generated history with known answers: runs and step states written straight into the
tables (as a finished history looks), so that every expected figure is computed here."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

#: Flow -> its steps, a chain.
FLOWS = {"alpha": ("a", "b"), "beta": ("only",)}


@dataclass(frozen=True)
class MadeRun:
    flow: str
    status: str  # 'completed', 'failed' or 'started'
    started_at: datetime
    #: Start to finish, for finished runs.
    seconds: float = 0.0
    error: str | None = None
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def finished_at(self) -> datetime | None:
        if self.status == "started":
            return None
        return self.started_at + timedelta(seconds=self.seconds)

    def step_seconds(self) -> dict[str, float]:
        """Completed steps' durations: a run's steps share its duration in equal parts."""
        if self.status != "completed":
            return {}
        steps = FLOWS[self.flow]
        return {slug: self.seconds / len(steps) for slug in steps}


def create_flows(conn: psycopg.Connection[Any]) -> None:
    for slug, steps in FLOWS.items():
        conn.execute("SELECT pgflow.create_flow(%s)", (slug,))
        for index, step in enumerate(steps):
            deps = [steps[index - 1]] if index else []
            conn.execute("SELECT pgflow.add_step(%s, %s, %s::text[])", (slug, step, deps))


def insert_runs(conn: psycopg.Connection[Any], runs: list[MadeRun]) -> None:
    """Write the runs with their step states: a completed run's steps all completed, a failed
    run's first step failed (the others never started), a running run's first step started."""
    run_rows = []
    step_rows = []
    for run in runs:
        steps = FLOWS[run.flow]
        finished = run.finished_at
        run_rows.append(
            (
                run.run_id,
                run.flow,
                run.status,
                0 if run.status == "completed" else len(steps),
                run.started_at,
                finished if run.status == "completed" else None,
                finished if run.status == "failed" else None,
            )
        )
        moment = run.started_at
        for index, step in enumerate(steps):
            took = timedelta(seconds=run.step_seconds().get(step, 0.0))
            if run.status == "completed":
                state = ("completed", 0, None, moment, moment + took, None)
                moment += took
            elif index == 0:
                status = "failed" if run.status == "failed" else "started"
                state = (status, 1, run.error, moment, None, finished)
            else:
                state = ("created", None, None, None, None, None)
            status, remaining, error, started, completed, failed = state
            deps_left = 1 if status == "created" else 0
            times = (run.started_at, started, completed, failed)
            step_rows.append(
                (run.flow, run.run_id, step, status, remaining, deps_left, error, *times)
            )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO pgflow.runs (run_id, flow_slug, status, input, remaining_steps, "
            "started_at, completed_at, failed_at) VALUES (%s, %s, %s, '{}', %s, %s, %s, %s)",
            run_rows,
        )
        cur.executemany(
            "INSERT INTO pgflow.step_states (flow_slug, run_id, step_slug, status, "
            "remaining_tasks, initial_tasks, remaining_deps, error_message, created_at, "
            "started_at, completed_at, failed_at) "
            "VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s)",
            step_rows,
        )


def percentile_cont(values: list[float], fraction: float) -> float:
    """The interpolated percentile, as PostgreSQL's percentile_cont defines it."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


#: A fixed past hour, so that windows are exact whatever the clock says.
BASE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def known_history() -> list[MadeRun]:
    """alpha: 10 completed (1..10 s, every 20 min from BASE), 3 failed, 2 running;
    beta: 2 completed (0.5 s, 1.5 s), 1 failed; all within BASE .. BASE + 5 h."""
    runs = [
        MadeRun("alpha", "completed", BASE + timedelta(minutes=20 * i), float(i + 1))
        for i in range(10)
    ]
    runs += [
        MadeRun("alpha", "failed", BASE + timedelta(minutes=7), 4.0, "boom"),
        MadeRun("alpha", "failed", BASE + timedelta(minutes=67), 2.0, "boom"),
        MadeRun("alpha", "failed", BASE + timedelta(minutes=127), 1.0, "oops"),
        MadeRun("alpha", "started", BASE + timedelta(minutes=200)),
        MadeRun("alpha", "started", BASE + timedelta(minutes=201)),
        MadeRun("beta", "completed", BASE + timedelta(minutes=5), 0.5),
        MadeRun("beta", "completed", BASE + timedelta(minutes=65), 1.5),
        MadeRun("beta", "failed", BASE + timedelta(minutes=250), 3.0, "boom"),
    ]
    return runs
