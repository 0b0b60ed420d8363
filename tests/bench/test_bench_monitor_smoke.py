"""Smoke test of ``python -m bench monitor`` on a tiny history: it generates, measures every
query and cleans up. No timing is asserted (a tiny table on a shared machine means nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from pgflow.testing import TestDatabaseServer

from ._run import run_bench

pytestmark = pytest.mark.slow


def test_monitor_bench_runs_end_to_end(
    pgflow_test_server: TestDatabaseServer, tmp_path: Path
) -> None:
    out = tmp_path / "monitor.json"
    done = run_bench(
        "monitor",
        "--runs",
        "3000",
        "--repeat",
        "2",
        "--database-url",
        pgflow_test_server.admin_url,
        "--json",
        str(out),
        timeout=300,
    )
    assert "monitor queries on 3,000 finished runs" in done.stdout
    figures = json.loads(out.read_text())
    timed = {name: r for name, r in figures["results"].items() if not name.startswith("_")}
    assert {"list_runs first page", "list_runs deep page (cursor)", "history"} <= set(timed)
    assert {n for n in timed if n.startswith("metrics")} == {
        "metrics last 24 h",
        "metrics last 24 h flow=bench_etl",
        "metrics last 7 days",
        "metrics last 7 days flow=bench_etl",
    }
    for name, result in timed.items():
        assert len(result["samples_ms"]) == 2, name
        assert 0 < result["median_ms"] <= result["max_ms"], name
    # 3,000 runs evenly over 30 days: 100 a day, every tenth of each flow's failed.
    day = figures["results"]["_sample"]["metrics last 24 h"]
    assert 95 <= day["total_runs"] <= 105
    assert day["failed"] == pytest.approx(day["total_runs"] / 10, abs=4)
    assert day["running"] == 0
    assert {r["error"] for r in day["failure_reasons"]} <= {
        "TimeoutError: step exceeded 60s",
        "ConnectionError: upstream refused",
        "KeyError: 'customer_id'",
        "ValueError: invalid date",
        "RuntimeError: quota exceeded",
    }
    with psycopg.connect(pgflow_test_server.admin_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (figures["database"],)
        ).fetchone()
    assert left == (0,)  # dropped at the end
