"""Keeping code and database in step: create, verify, update options, refuse or recreate."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow

from pgflow import Flow, FlowShapeMismatchError, job
from pgflow.flows import (
    aensure_flow,
    delete_flow,
    ensure_flow,
    flow_exists,
    list_flows,
    upsert_flow,
)


def make_flow(
    *, timeout: int | None = None, extra_step: bool = False, map_b: bool = False
) -> Flow[Any]:
    flow = Flow("shop", timeout=timeout)

    @flow.array
    def a(run: Any) -> list[int]:
        return [1]

    if map_b:

        @flow.map(a)
        def b(item: Any) -> Any:
            return item

    else:

        @flow.step(a, max_attempts=4)
        def b(run: Any, x: Any) -> Any:
            return x

    if extra_step:

        @flow.step(b)
        def c(run: Any, x: Any) -> Any:
            return x

    return flow


def _rows(conn: psycopg.Connection[DictRow], table: str) -> list[dict[str, Any]]:
    order = {"flows": "flow_slug", "steps": "step_index", "deps": "dep_slug, step_slug"}[table]
    cols = {
        "flows": "flow_slug, opt_max_attempts, opt_base_delay, opt_timeout",
        "steps": "flow_slug, step_slug, step_type, step_index, deps_count, opt_max_attempts, "
        "opt_base_delay, opt_timeout, opt_start_delay",
        "deps": "flow_slug, dep_slug, step_slug",
    }[table]
    return pgflow_rows(conn, f"SELECT {cols} FROM pgflow.{table} ORDER BY {order}")


def pgflow_rows(conn: psycopg.Connection[DictRow], query: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(query).fetchall()]  # type: ignore[arg-type]


def test_created_then_verified(pgflow_conn: psycopg.Connection[DictRow]) -> None:
    flow = make_flow()
    assert ensure_flow(pgflow_conn, flow).status == "created"
    assert flow_exists(pgflow_conn, "shop")
    assert [s["step_slug"] for s in _rows(pgflow_conn, "steps")] == ["a", "b"]
    assert _rows(pgflow_conn, "flows") == [
        {"flow_slug": "shop", "opt_max_attempts": 3, "opt_base_delay": 5, "opt_timeout": 60}
    ]
    before = (_rows(pgflow_conn, "steps"), _rows(pgflow_conn, "deps"))
    assert ensure_flow(pgflow_conn, make_flow()).status == "verified"
    assert (_rows(pgflow_conn, "steps"), _rows(pgflow_conn, "deps")) == before


def test_options_only_change_is_applied_without_data_loss(
    pgflow_conn: psycopg.Connection[DictRow],
) -> None:
    ensure_flow(pgflow_conn, make_flow())
    pgflow_conn.execute("SELECT pgflow.start_flow('shop', '{}'::jsonb)")
    result = ensure_flow(pgflow_conn, make_flow(timeout=30))
    assert result.status == "updated"
    assert _rows(pgflow_conn, "flows")[0]["opt_timeout"] == 30
    assert pgflow_conn.execute("SELECT count(*) AS n FROM pgflow.runs").fetchone() == {"n": 1}
    # Back to the default: the stored value returns to create_flow's default, not NULL.
    assert ensure_flow(pgflow_conn, make_flow()).status == "updated"
    assert _rows(pgflow_conn, "flows")[0]["opt_timeout"] == 60


def test_step_option_removed_becomes_null(pgflow_conn: psycopg.Connection[DictRow]) -> None:
    ensure_flow(pgflow_conn, make_flow())
    assert _rows(pgflow_conn, "steps")[1]["opt_max_attempts"] == 4
    flow = Flow("shop")

    @flow.array
    def a(run: Any) -> list[int]:
        return [1]

    @flow.step(a)
    def b(run: Any, x: Any) -> Any:
        return x

    assert ensure_flow(pgflow_conn, flow).status == "updated"
    assert _rows(pgflow_conn, "steps")[1]["opt_max_attempts"] is None


def test_shape_change_is_refused_with_the_differences(
    pgflow_conn: psycopg.Connection[DictRow],
) -> None:
    ensure_flow(pgflow_conn, make_flow())
    pgflow_conn.execute("SELECT pgflow.start_flow('shop', '{}'::jsonb)")
    with pytest.raises(FlowShapeMismatchError) as caught:
        ensure_flow(pgflow_conn, make_flow(extra_step=True, map_b=True))
    assert caught.value.differences == [
        "step count differs: code has 3, database has 2",
        "step 'b': type differs: code 'map', database 'single'",
        "step 'c' is missing in the database",
    ]
    assert "deletes the flow with its 1 run(s)" in str(caught.value)
    assert len(_rows(pgflow_conn, "steps")) == 2  # nothing changed


def test_recreate_deletes_runs_and_says_so(pgflow_conn: psycopg.Connection[DictRow]) -> None:
    ensure_flow(pgflow_conn, make_flow())
    pgflow_conn.execute("SELECT pgflow.start_flow('shop', '{}'::jsonb)")
    result = ensure_flow(pgflow_conn, make_flow(extra_step=True), recreate=True)
    assert result.status == "recreated"
    assert result.deleted_runs == 1
    assert result.differences
    assert [s["step_slug"] for s in _rows(pgflow_conn, "steps")] == ["a", "b", "c"]
    assert pgflow_conn.execute("SELECT count(*) AS n FROM pgflow.runs").fetchone() == {"n": 0}
    queues = pgflow_conn.execute("SELECT queue_name FROM pgmq.list_queues()").fetchall()
    assert {"queue_name": "shop"} in queues


def test_concurrent_ensure_is_safe(pgflow_database_url: str) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
                barrier.wait()
                results.append(ensure_flow(conn, make_flow()).status)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results) == ["created", "verified", "verified", "verified"]


async def test_async_variant(pgflow_aconn: psycopg.AsyncConnection[Any]) -> None:
    assert (await aensure_flow(pgflow_aconn, make_flow())).status == "created"
    assert (await aensure_flow(pgflow_aconn, make_flow())).status == "verified"


def test_inside_a_callers_transaction_that_rolls_back(pgflow_database_url: str) -> None:
    with psycopg.connect(pgflow_database_url) as conn:
        conn.execute("SELECT 1")  # the application's transaction is open
        ensure_flow(conn, make_flow())
        assert flow_exists(conn, "shop")
        conn.rollback()
        assert not flow_exists(conn, "shop")


def test_runtime_flows_from_data(pgflow_conn: psycopg.Connection[DictRow]) -> None:
    steps = [
        {"slug": "notify", "depends_on": ["fetch"], "timeout": 5},
        {"slug": "fetch", "step_type": "single"},
    ]
    assert upsert_flow(pgflow_conn, "tenant_42", steps, max_attempts=2).status == "created"
    assert upsert_flow(pgflow_conn, "tenant_42", steps, max_attempts=2).status == "verified"
    summaries = list_flows(pgflow_conn)
    assert [(f.flow_slug, f.max_attempts, f.step_count) for f in summaries] == [("tenant_42", 2, 2)]
    assert delete_flow(pgflow_conn, "tenant_42") is True
    assert delete_flow(pgflow_conn, "tenant_42") is False
    assert not flow_exists(pgflow_conn, "tenant_42")
    assert pgflow_conn.execute("SELECT count(*) AS n FROM pgmq.list_queues()").fetchone() == {
        "n": 0
    }


def test_jobs_can_be_ensured(pgflow_conn: psycopg.Connection[DictRow]) -> None:
    @job(timeout=10)
    def send(payload: Any) -> None:
        return None

    assert ensure_flow(pgflow_conn, send).status == "created"
    assert _rows(pgflow_conn, "steps")[0]["step_slug"] == "send"
