"""The invariant checks of the reliability suite pass on a clean run and catch each kind of
violation planted afterwards (a check that cannot fail would prove nothing)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from pgflow import Client

from . import flows
from .harness import Figures, Fleet, Workload, check_invariants, drive, prepare, start_runs


@pytest.mark.slow
def test_the_checks_catch_planted_violations(pgflow_database_url: str, tmp_path: Path) -> None:
    url = pgflow_database_url
    prepare(url, [flows.chain, flows.ledger])
    fleet = Fleet(
        url, ["tests.reliability.flows:chain", "tests.reliability.flows:ledger"], tmp_path
    )
    workload = Workload()
    try:
        fleet.spawn()
        with Client(url, listen=False) as client:
            start_runs(client, workload, flows.chain, range(2))
            start_runs(client, workload, flows.ledger, range(2))
        drive(url, workload, fleet, deadline=time.monotonic() + 90)
    finally:
        fleet.stop()
    assert check_invariants(url, workload, fleet, Figures()) == []

    chain_run = next(iter(workload.runs["rel_chain"]))
    with psycopg.connect(url, autocommit=True) as conn:
        # A wrong output, a second completion, a second transactional effect, an execution
        # overlapping another one of its task, and an attempt beyond max_attempts.
        conn.execute(
            "UPDATE pgflow.runs SET output = '{\"third\": -1}' WHERE run_id = %s", (chain_run,)
        )
        conn.execute(
            "INSERT INTO reliability.transitions SELECT * FROM reliability.transitions "
            "WHERE new_status = 'completed' AND step_slug = 'first' AND run_id = %s",
            (chain_run,),
        )
        conn.execute(
            "INSERT INTO reliability.effects SELECT * FROM reliability.effects "
            "WHERE step_slug = 'debit' LIMIT 1"
        )
        conn.execute(
            "INSERT INTO reliability.executions "
            "SELECT gen_random_uuid(), run_id, step_slug, task_index, 9, pid, started + 0.001, "
            "NULL FROM reliability.executions WHERE step_slug = 'second' AND run_id = %s",
            (chain_run,),
        )
    problems = "\n".join(check_invariants(url, workload, fleet, Figures()))
    assert "output {'third': -1}" in problems
    assert f"first[0] of run {chain_run} (completed) was completed 2 times" in problems
    assert "has 2 transactional effects" in problems
    assert f"second[0] of run {chain_run} ran twice at once" in problems
    assert "exceeds the task's max_attempts" in problems
