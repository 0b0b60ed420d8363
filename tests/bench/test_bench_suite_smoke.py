"""Smoke test of ``python -m bench suite --quick``: every section runs and reports its figures.

Only the structure of the output is asserted, never a figure against a target: a quick run on a
shared machine measures nothing. A peer that cannot be installed here (no registry) must be
reported unavailable with a reason, and the rest must still run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench.suite import FLOW_WORKLOADS, OURS, OURS_HISTORY, PEERS, SECTIONS, as_url

from pgflow.testing import TestDatabaseServer

from ._run import run_bench

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick(
    pgflow_test_server: TestDatabaseServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench") / "suite.json"
    done = run_bench(
        "suite",
        "--quick",
        "--database-url",
        pgflow_test_server.admin_url,
        "--json",
        str(out),
        timeout=900,
    )
    return json.loads(out.read_text()), done.stdout


def _measured_or_unavailable(results: dict[str, Any], workload: str, system: str) -> bool:
    """True when measured; asserts that an unmeasured system is reported with a reason."""
    if system in results["throughput"][workload]["per_second"]:
        return True
    assert results["unavailable"][system], f"{system} neither measured nor reported"
    return False


def test_every_section_ran_and_every_measurement_completed(
    quick: tuple[dict[str, Any], str],
) -> None:
    results, _ = quick
    assert results["config"]["sections"] == list(SECTIONS)
    assert results["all_ok"] is True, results["problems"]
    assert results["measurements"]
    for m in results["measurements"]:
        assert m["problems"] == [], m
        assert m["completed_tasks"] == m["expected_tasks"] > 0, m


def test_flows_rows_compare_our_worker_with_upstream_and_raw_pgmq(
    quick: tuple[dict[str, Any], str],
) -> None:
    results, _ = quick
    for workload in FLOW_WORKLOADS:
        entry = results["throughput"][workload]
        assert entry["per_second"][OURS]["median"] > 0
        assert len(entry["per_second"][OURS]["rounds"]) == 1
        if _measured_or_unavailable(results, workload, "upstream"):
            assert entry["ours_over"]["upstream"]["median"] > 0
    chain = results["throughput"]["chain"]
    assert chain["ours_over"]["pgmq-1ack"]["median"] > 0
    assert chain["ours_over"][OURS_HISTORY]["median"] > 0


def test_jobs_rows_have_each_peer_measured_or_unavailable_and_pgbench(
    quick: tuple[dict[str, Any], str],
) -> None:
    results, _ = quick
    assert results["throughput"]["job"]["per_second"][OURS]["median"] > 0
    for peer in PEERS:
        if _measured_or_unavailable(results, "job", peer):
            assert results["throughput"]["job"]["ours_over"][peer]["median"] > 0
            assert peer in results["systems"]
    if "pgbench" not in results["unavailable"]:
        (clients,) = results["config"]["pgbench_clients"]
        tps = results["throughput"]["pgbench"]["per_second"][f"pgbench -c {clients}"]["median"]
        assert tps > 0


def test_map_latency_and_memory_figures(quick: tuple[dict[str, Any], str]) -> None:
    results, _ = quick
    assert set(results["map"]) == {str(size) for size in results["config"]["map_sizes"]}
    for size, entry in results["map"].items():
        assert entry["problems"] == []
        assert entry["start_ms"][OURS]["median_ms"] > 0
        assert entry["completion"]["completed_tasks"] == int(size)
    for source in ("database", "client"):
        stats = results["latency_ms"][source]
        assert stats["count"] == results["config"]["latency_runs"]
        assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"]
    memory = results["memory"]
    assert memory["max_concurrent"] == 100
    assert memory["peak_rss_mb"] > 0
    assert memory["problems"] == []


def test_every_target_is_judged_from_a_figure(quick: tuple[dict[str, Any], str]) -> None:
    results, stdout = quick
    targets = results["targets"]
    assert len(targets) == 8
    for check in targets:
        if check["met"] is None:
            # Only a target whose peer is unavailable here may go unmeasured.
            assert check["status"].startswith("not measured: "), check
            assert "unavailable" in check["status"], check
        else:
            assert check["status"] == ("met" if check["met"] else "UNMET")
            assert check["figure"] != "-"
    assert "targets (issue #10)" in stdout
    assert "throughput over the busy window" in stdout
    for name in ("synchronous_commit", "fsync", "wal_level", "autovacuum"):
        assert name in results["server"]["settings"]
        assert f"{name} " in stdout


def test_a_peer_that_cannot_be_had_is_reported_and_the_rest_still_runs(
    pgflow_test_server: TestDatabaseServer, tmp_path: Path
) -> None:
    done = run_bench(
        "suite",
        "--quick",
        "--only",
        "jobs",
        "--peers",
        "existing",
        "--peers-venv",
        str(tmp_path / "no-venv"),
        "--database-url",
        pgflow_test_server.admin_url,
        "--json",
        str(tmp_path / "suite.json"),
        timeout=600,
    )
    results = json.loads((tmp_path / "suite.json").read_text())
    for peer in PEERS:
        assert "no python at" in results["unavailable"][peer]
        assert f"{peer:14} unavailable: no python at" in done.stdout
    assert list(results["throughput"]["job"]["per_second"]) == [OURS]
    (pgqueuer_target,) = [t for t in results["targets"] if "PgQueuer" in t["target"]]
    assert pgqueuer_target["status"] == "not measured: pgqueuer unavailable (see systems)"


@pytest.mark.parametrize(
    ("conninfo", "url"),
    [
        (
            "host=127.0.0.1 port=5432 user=postgres dbname=x",
            "postgresql://postgres@127.0.0.1:5432/x",
        ),
        (
            "host=/run/postgresql user=a password=p@ss dbname=y sslmode=disable",
            "postgresql://a:p%40ss@/y?sslmode=disable&host=%2Frun%2Fpostgresql",
        ),
        ("postgresql://u@[::1]:5433/z", "postgresql://u@[::1]:5433/z"),
    ],
)
def test_peer_urls_are_built_from_libpq_connection_strings(conninfo: str, url: str) -> None:
    assert as_url(conninfo) == url
