"""Fault injection: a mixed workload (chains, a map, retries, failures, transactional steps)
while worker processes are killed with SIGKILL, and while the PostgreSQL server restarts.

Afterwards every run has ended as its flow says, none is lost, every task was completed at
most once (exactly once when its run completed) with exactly one transactional effect, no
task made more attempts than allowed, no execution of a task overlapped another one, and no
task is left behind; after the restarts, every worker listens for events again. The figures
are printed (and shown in the terminal summary). ``RELIABILITY_SEED`` replays a schedule of
disturbances."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from pgflow._embedded import EmbeddedServer

from .harness import (
    MIX,
    MIX_TARGETS,
    Figures,
    Fleet,
    check_invariants,
    check_live_ownership,
    drive,
    prepare,
    report,
    restart,
    start_mix,
    wait_listening,
)

#: The issue asks for 5,000 runs under SIGKILL chaos.
KILL_RUNS = 5000
KILL_WORKERS = 4
#: Restarts take the server away for seconds each: fewer runs keep the test within its budget.
RESTART_RUNS = 2500
RESTART_WORKERS = 3
RESTART_MODES = ["fast", "immediate", "fast"]
#: The longest a test may take to bring its runs to an end.
DEADLINE = 300.0


@pytest.mark.faults
@pytest.mark.slow
def test_runs_survive_workers_killed_at_random(
    own_server: tuple[EmbeddedServer, str], tmp_path: Path, record_property: Any
) -> None:
    _, url = own_server
    began = time.monotonic()
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "kill"))
    prepare(url, MIX)
    fleet = Fleet(url, MIX_TARGETS, tmp_path)
    figures = Figures()

    def kill() -> bool:
        fleet.kill_one(rng)
        figures.kills += 1
        return True

    try:
        for _ in range(KILL_WORKERS):
            fleet.spawn()
        workload = start_mix(url, KILL_RUNS)
        drive(url, workload, fleet, deadline=began + DEADLINE, disturb=kill, rng=rng)
        problems = check_live_ownership(url, workload, fleet)
    finally:
        fleet.stop()
    problems += check_invariants(url, workload, fleet, figures)
    figures.wall_seconds = time.monotonic() - began
    record_property("figures", report(figures, problems, "SIGKILL chaos"))
    assert figures.kills > 0
    assert figures.recovered_tasks > 0  # kills did land mid-task, and recovery took over


@pytest.mark.faults
@pytest.mark.slow
def test_runs_survive_server_restarts(
    own_server: tuple[EmbeddedServer, str], tmp_path: Path, record_property: Any
) -> None:
    server, url = own_server
    began = time.monotonic()
    rng = random.Random(os.environ.get("RELIABILITY_SEED", "restart"))
    prepare(url, MIX)
    fleet = Fleet(url, MIX_TARGETS, tmp_path)
    figures = Figures()
    modes = list(RESTART_MODES)

    def restart_server() -> bool:
        restart(server, modes.pop(0))
        figures.restarts += 1
        return bool(modes)

    try:
        for _ in range(RESTART_WORKERS):
            fleet.spawn()
        workload = start_mix(url, RESTART_RUNS)
        drive(
            url,
            workload,
            fleet,
            deadline=began + DEADLINE,
            disturb=restart_server,
            every=(2.0, 4.0),
            rng=rng,
        )
        problems = check_live_ownership(url, workload, fleet) + wait_listening(url, fleet)
    finally:
        fleet.stop()
    problems += check_invariants(url, workload, fleet, figures)
    figures.wall_seconds = time.monotonic() - began
    record_property("figures", report(figures, problems, "PostgreSQL restarts"))
    assert figures.restarts == len(RESTART_MODES), "the load ended before every restart"
