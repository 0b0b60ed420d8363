"""Smoke test of ``python -m bench core --quick``: it runs end to end and its figures are sane.

No timing is asserted: the figures of a quick run on a shared machine mean nothing; this only
checks that every core was driven to completion and that every figure was measured.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgflow.testing import TestDatabaseServer

from ._run import run_bench

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_results(
    pgflow_test_server: TestDatabaseServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "core.json"
    done = run_bench(
        "core",
        "--quick",
        "--database-url",
        pgflow_test_server.admin_url,
        "--json",
        str(out),
        timeout=120,
    )
    assert "tasks/s over the busy window" in done.stdout
    return json.loads(out.read_text())


def test_every_measurement_completed_all_runs(quick_results: dict[str, Any]) -> None:
    assert quick_results["all_ok"] is True
    measurements = quick_results["measurements"]
    assert measurements
    for m in measurements:
        assert m["problems"] == [], m
        assert m["completed_tasks"] == m["expected_tasks"] > 0
        assert m["completed_runs"] == m["runs"] > 0


def test_our_core_has_positive_throughput_in_every_workload(quick_results: dict[str, Any]) -> None:
    workloads = quick_results["workloads"]
    assert set(workloads) == {"chain", "fanin", "single"}
    for entry in workloads.values():
        ours = entry["tasks_per_second"]["ours"]
        assert len(ours["rounds"]) == 1
        assert ours["median"] > 0


def test_upstream_is_measured_or_reported_unavailable(quick_results: dict[str, Any]) -> None:
    if "upstream" in quick_results["unavailable"]:
        assert quick_results["unavailable"]["upstream"]  # a reason, printed loudly
        return
    for entry in quick_results["workloads"].values():
        assert entry["tasks_per_second"]["upstream"]["median"] > 0
        ratio = entry["ratios"]["ours/upstream"]["median"]
        assert ratio is not None
        assert ratio > 0


def test_raw_pgmq_ceiling_and_map_start_are_measured(quick_results: dict[str, Any]) -> None:
    ceilings = quick_results["raw_ceilings"]
    assert set(ceilings) == {"pgmq-1ack", "pgmq-fused"}
    for entry in ceilings.values():
        assert entry["messages_per_second"]["median"] > 0
        assert entry["percent"]["ours chain"]["median"] > 0
    for core, stats in quick_results["start_flow_root_map"].items():
        assert stats["problems"] == [], core
        assert len(stats["ms"]) == quick_results["config"]["map_repeats"]
        assert stats["median_ms"] > 0
