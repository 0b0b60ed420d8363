"""The monitor's statements are answered by the indexes the module docstring names: on a
generated history (the benchmark's, 20,000 runs over 30 days, analysed) and with sequential
scans priced out, each plan is a range scan of the expected index, with no sort for the page
order (a statement that stopped matching its index would scan or sort the whole table)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from bench.monitor import FLOWS, generate
from psycopg import sql

from pgflow import install
from pgflow import sql as core_sql
from pgflow._ops import Statement
from pgflow.client._models import encode_cursor
from pgflow.monitor import _operations as ops
from pgflow.testing import TestDatabaseServer

NOW = datetime.now(UTC)
BASE = NOW - timedelta(days=10)
WINDOW = {"flows": list(FLOWS), "since": NOW - timedelta(days=1), "until": NOW, "top": 5}
CURSOR = encode_cursor(SimpleNamespace(started_at=NOW - timedelta(days=3), run_id=uuid.UUID(int=1)))


@pytest.fixture(scope="module")
def history_url(pgflow_test_server: TestDatabaseServer) -> Iterator[str]:
    name = pgflow_test_server.create_database(label="plans")
    url = pgflow_test_server.url_for(name)
    install(url)
    generate(url, 20_000)
    yield url
    pgflow_test_server.drop_database(name)


@pytest.fixture
def conn(history_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(history_url, autocommit=True) as connection:
        connection.execute("SET enable_seqscan = off")
        yield connection


def plan_of(conn: psycopg.Connection[Any], statement: Statement) -> str:
    query, params = statement
    composed = sql.SQL("EXPLAIN ") + (sql.SQL(query) if isinstance(query, str) else query)
    rows = conn.execute(composed, params).fetchall()
    return "\n".join(r[0] for r in rows)


#: The indexes in keyset order (started_at DESC, run_id DESC), behind an optional prefix. Which
#: one a plan takes depends on how selective the filters are (a flow with a quarter of the runs
#: is found soonest by walking all runs newest first); each gives the page without a sort.
KEYSET_INDEXES = (
    "idx_runs_started_at",
    "idx_runs_flow_started_at",
    "idx_runs_status_started_at",
    "idx_runs_flow_status_started_at",
)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"cursor": CURSOR},
        {"since": BASE, "until": BASE + timedelta(hours=1)},
        {"flow": "bench_etl"},
        {"flow": "bench_etl", "since": BASE, "cursor": CURSOR},
        {"status": "failed"},
        {"status": "started"},
        {"status": "failed", "until": BASE, "cursor": CURSOR},
        {"flow": "bench_etl", "status": "failed"},
        {"flow": "bench_etl", "status": "started", "since": BASE, "cursor": CURSOR},
    ],
)
def test_list_runs_is_a_range_scan(conn: psycopg.Connection[Any], filters: dict[str, Any]) -> None:
    plan = plan_of(conn, next(ops.list_runs(**filters)))
    scan = plan.splitlines()[1]  # under the Limit: the scan that produces the order
    assert any(f"Index Scan using {index} " in scan for index in KEYSET_INDEXES), plan
    assert "Sort" not in plan.split("SubPlan")[0], plan  # the subplan finds a failed run's error


def test_a_rare_status_has_its_own_range(conn: psycopg.Connection[Any]) -> None:
    """No run is running: the page is an empty range, not a walk through every finished run."""
    for flow in (None, "bench_etl"):
        plan = plan_of(conn, next(ops.list_runs(flow=flow, status="started")))
        scan = plan.splitlines()[1]
        assert "Index Cond: (status = 'started'::text)" in plan or (
            "Index Cond: ((flow_slug = 'bench_etl'::text) AND (status = 'started'::text))" in plan
        ), plan
        assert "status_started_at" in scan, plan


def test_history_is_a_range_scan(conn: psycopg.Connection[Any]) -> None:
    plan = plan_of(conn, next(ops.history(since=BASE)))
    assert "Index Scan using idx_runs_finished_at " in plan, plan
    assert "Sort" not in plan.split("SubPlan")[0], plan


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("monitor_run_outcomes", "Index Only Scan using idx_runs_flow_started_at "),
        ("monitor_busy_hours", "Index Only Scan using idx_runs_flow_started_at "),
        ("monitor_runs_per_status", "Index Only Scan using idx_runs_flow_started_at "),
        ("monitor_step_durations", "Index Only Scan using idx_step_states_completed_by_creation "),
        ("monitor_failure_reasons", "Index Scan on idx_step_states_failed_by_creation"),
    ],
)
def test_metrics_read_ranges_of_their_indexes(
    conn: psycopg.Connection[Any], query: str, index: str
) -> None:
    plan = plan_of(conn, (core_sql.query(query), WINDOW))
    assert index in plan, plan
    assert "Seq Scan on runs" not in plan, plan
    assert "Seq Scan on step_states" not in plan, plan
