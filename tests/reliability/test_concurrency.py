"""Eight worker processes on one flow: every task is executed once, never by two of them at
the same time, and completed once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgflow import Client
from pgflow._embedded import EmbeddedServer

from . import flows
from .harness import (
    Figures,
    Fleet,
    Workload,
    check_invariants,
    check_live_ownership,
    drive,
    prepare,
    report,
    start_runs,
)

WORKERS = 8
RUNS = 100


@pytest.mark.slow
def test_eight_workers_never_run_a_task_twice(
    own_server: tuple[EmbeddedServer, str], tmp_path: Path, record_property: Any
) -> None:
    _, url = own_server
    began = time.monotonic()
    prepare(url, [flows.wide])
    fleet = Fleet(url, ["tests.reliability.flows:wide"], tmp_path)
    figures = Figures()
    workload = Workload()
    try:
        for _ in range(WORKERS):
            fleet.spawn()
        fleet.wait_registered()
        with Client(url, listen=False) as client:
            start_runs(client, workload, flows.wide, range(RUNS), flows.wide_input)
        drive(url, workload, fleet, deadline=began + 180)
        problems = check_live_ownership(url, workload, fleet)
    finally:
        fleet.stop()
    problems += check_invariants(url, workload, fleet, figures)
    figures.wall_seconds = time.monotonic() - began
    record_property("figures", report(figures, problems, "8 workers, one flow"))
    # Without faults, at least once is exactly once: one execution per task.
    assert figures.tasks == RUNS * (flows.WIDE_WIDTH + 1)
    assert figures.executions == figures.tasks
    with psycopg.connect(url) as conn:
        busy = conn.execute("SELECT count(DISTINCT pid) FROM reliability.executions").fetchone()
    assert busy == (WORKERS,), "every worker process took part"
