"""Smoke test of ``python -m bench ab``: both sides installed, measured and compared.

Only the structure of the output is asserted, never a figure: one tiny round measures nothing.
"""

from __future__ import annotations

import re
import subprocess

import psycopg
import pytest

from pgflow.testing import TestDatabaseServer

from ._run import REPO_ROOT, run_bench

pytestmark = pytest.mark.slow


def test_ab_measures_both_trees_and_cleans_up(pgflow_test_server: TestDatabaseServer) -> None:
    # One test for all: run side by side, each would see the other's worktree.
    for workload, driver in (
        ("chain", "worker"),
        ("single", "worker"),
        ("fanin", "core"),
        ("chain", "start"),
        ("chain", "latency"),
    ):
        _measure_and_check(pgflow_test_server, workload, driver)


def _measure_and_check(pgflow_test_server: TestDatabaseServer, workload: str, driver: str) -> None:
    def worktrees() -> str:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), "worktree", "list"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    before = worktrees()
    done = run_bench(
        "ab",
        "--base",
        "HEAD",
        "--rounds",
        "1",
        "--runs",
        "40",
        "--workload",
        workload,
        "--driver",
        driver,
        "--database-url",
        pgflow_test_server.admin_url,
        timeout=600,
    )
    unit, per = {
        "start": ("runs started/s", "run"),
        "latency": ("ms p50 latency", "run"),
    }.get(driver, ("tasks/s", "task"))
    rounds = re.findall(rf"^round 1 ([AB]): ([\d,.]+) {re.escape(unit)}", done.stdout, re.MULTILINE)
    assert [side for side, _ in rounds] == ["A", "B"]
    assert all(float(rate.replace(",", "")) > 0 for _, rate in rounds)
    for label in (unit, f"worker CPU us/{per}", f"PostgreSQL CPU us/{per}"):
        figures = rf"^{re.escape(label)} +A +[\d,.]+ +B +[\d,.]+ +B/A [\d.]+"
        # CPU is measured for our worker's processes and, but for the latency (one run at a
        # time), for PostgreSQL's.
        expected = (
            driver == "worker"
            or (label.startswith("PostgreSQL") and driver != "latency")
            or label == unit
        )
        assert bool(re.search(figures, done.stdout, re.MULTILINE)) == expected, label
    assert worktrees() == before, "the base tree's worktree was left behind"
    with psycopg.connect(pgflow_test_server.admin_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgflow_bench_ab_%'"
        ).fetchone()
    assert left == (0,)
