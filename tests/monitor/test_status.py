"""get_status: a run, its steps (attempts, task counts of a map, outputs, errors) and, on
demand, its tasks; driven through the SQL API as a worker would; sync and async."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pgflow.errors import RunNotFoundError
from pgflow.monitor import AsyncMonitor, Monitor, RunStatus

WORKER = uuid.UUID("00000000-0000-0000-0000-0000000000aa")


class Shop:
    """Flow 'shop': items (array) -> price (map over items) -> total; two attempts a task."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        conn.execute("SELECT pgflow.create_flow('shop', max_attempts => 2)")
        conn.execute("SELECT pgflow.add_step('shop', 'items')")
        conn.execute("SELECT pgflow.add_step('shop', 'price', ARRAY['items'], step_type => 'map')")
        conn.execute("SELECT pgflow.add_step('shop', 'total', ARRAY['price'])")
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) "
            "VALUES (%s, 'shop', 'test')",
            (WORKER,),
        )

    def start(self, payload: Any) -> uuid.UUID:
        row = self.conn.execute(
            "SELECT run_id FROM pgflow.start_flow('shop', %s)", (json.dumps(payload),)
        ).fetchone()
        assert row is not None
        return uuid.UUID(str(row[0]))

    def claim(self) -> list[dict[str, Any]]:
        """Every task visible now, started by WORKER (retries are made visible at once)."""
        self.conn.execute("UPDATE pgmq.q_shop SET vt = now()")
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT run_id, step_slug, task_index, input FROM pgflow.start_tasks('shop', "
                "ARRAY(SELECT msg_id FROM pgmq.read('shop', 30, 100)), %s) "
                "ORDER BY step_slug, task_index",
                (WORKER,),
            )
            return cur.fetchall()

    def complete(self, task: dict[str, Any], output: Any) -> None:
        self.conn.execute(
            "SELECT pgflow.complete_task(%s, %s, %s, %s)",
            (task["run_id"], task["step_slug"], task["task_index"], json.dumps(output)),
        )

    def fail(self, task: dict[str, Any], error: str) -> None:
        self.conn.execute(
            "SELECT pgflow.fail_task(%s, %s, %s, %s)",
            (task["run_id"], task["step_slug"], task["task_index"], error),
        )


@pytest.fixture
def shop_runs(pgflow_database_url: str) -> dict[str, Any]:
    """done: completed, one price task needed two attempts; broken: items failed twice;
    busy: one of three price tasks done."""
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        shop = Shop(conn)
        done = shop.start({"items": ["a", "bb", "ccc"]})
        broken = shop.start({"items": []})
        busy = shop.start({"items": ["x", "yy", "zzz"]})
        for task in shop.claim():  # the three items steps
            if task["run_id"] == broken:
                shop.fail(task, "no items")
            else:
                shop.complete(task, task["input"]["run"]["items"])
        for task in shop.claim():  # broken's retry, six price tasks
            if task["run_id"] == broken:
                shop.fail(task, "still no items")
            elif task["run_id"] == done and task["task_index"] == 0:
                shop.fail(task, "flaky")
            elif task["run_id"] == done or task["task_index"] == 1:
                shop.complete(task, len(task["input"]))
        for task in shop.claim():  # done's retried price task 0
            shop.complete(task, len(task["input"]))
        (total,) = shop.claim()  # done's total
        shop.complete(total, 6)
    return {"url": pgflow_database_url, "done": done, "broken": broken, "busy": busy}


def steps_of(found: RunStatus) -> list[tuple[Any, ...]]:
    fields = ("step_slug", "step_type", "status", "attempts", "tasks_done", "tasks_total")
    fields += ("tasks_failed", "output", "error")
    return [tuple(getattr(s, f) for f in fields) for s in found.steps]


def test_completed_run(shop_runs: dict[str, Any]) -> None:
    with Monitor(shop_runs["url"], max_pool_size=1) as monitor:
        found = monitor.get_status(shop_runs["done"])
    assert (found.run_id, found.flow_slug, found.status) == (shop_runs["done"], "shop", "completed")
    assert found.input == {"items": ["a", "bb", "ccc"]}
    assert found.output == {"total": 6}
    assert found.error is None
    assert found.remaining_steps == 0
    assert found.completed_at is not None
    assert found.failed_at is None
    assert found.duration == found.completed_at - found.started_at
    assert steps_of(found) == [
        ("items", "single", "completed", 1, 1, 1, 0, ["a", "bb", "ccc"], None),
        ("price", "map", "completed", 2, 3, 3, 0, [1, 2, 3], None),
        ("total", "single", "completed", 1, 1, 1, 0, 6, None),
    ]
    assert [s.step_index for s in found.steps] == [0, 1, 2]
    price = found.step("price")
    assert price.duration == price.completed_at - price.started_at  # type: ignore[operator]
    assert found.tasks is None


def test_failed_run(shop_runs: dict[str, Any]) -> None:
    with Monitor(shop_runs["url"], max_pool_size=1) as monitor:
        found = monitor.get_status(shop_runs["broken"])
    assert found.status == "failed"
    assert found.error == "still no items"
    assert found.output is None
    assert found.duration == found.failed_at - found.started_at  # type: ignore[operator]
    assert steps_of(found) == [
        ("items", "single", "failed", 2, 0, 1, 1, None, "still no items"),
        ("price", "map", "created", 0, 0, None, 0, None, None),
        ("total", "single", "created", 0, 0, 1, 0, None, None),
    ]
    assert found.step("price").duration is None


def test_running_run_with_its_tasks(shop_runs: dict[str, Any]) -> None:
    with Monitor(shop_runs["url"], max_pool_size=1) as monitor:
        found = monitor.get_status(shop_runs["busy"], include_tasks=True)
    assert found.status == "started"
    assert found.duration is None
    assert found.remaining_steps == 2
    assert steps_of(found)[1] == ("price", "map", "started", 1, 1, 3, 0, None, None)
    assert found.tasks is not None
    tasks = [(t.step_slug, t.task_index, t.status, t.attempts, t.output) for t in found.tasks]
    assert tasks == [
        ("items", 0, "completed", 1, ["x", "yy", "zzz"]),
        ("price", 0, "started", 1, None),
        ("price", 1, "completed", 1, 2),
        ("price", 2, "started", 1, None),
    ]
    assert {t.worker_id for t in found.tasks} == {WORKER}
    assert all(t.message_id is not None for t in found.tasks)
    assert found.tasks[1].duration is None
    assert found.tasks[2].duration == found.tasks[2].completed_at - found.tasks[2].started_at  # type: ignore[operator]


def test_as_dict_is_json(shop_runs: dict[str, Any]) -> None:
    with Monitor(shop_runs["url"], max_pool_size=1) as monitor:
        found = monitor.get_status(shop_runs["done"], include_tasks=True)
    shown = json.loads(json.dumps(found.as_dict()))
    assert shown["run_id"] == str(shop_runs["done"])
    assert shown["started_at"] == found.started_at.isoformat()
    assert shown["duration"] == found.duration.total_seconds()  # type: ignore[union-attr]
    assert shown["steps"][1]["output"] == [1, 2, 3]
    assert shown["steps"][1]["tasks_total"] == 3
    assert shown["tasks"][0]["worker_id"] == str(WORKER)
    failed_attempt = next(t for t in shown["tasks"] if t["step_slug"] == "price")
    assert failed_attempt["attempts"] == 2


def test_unknown_run(shop_runs: dict[str, Any]) -> None:
    missing = uuid.UUID("00000000-0000-0000-0000-0000000000ff")
    with (
        Monitor(shop_runs["url"], max_pool_size=1) as monitor,
        pytest.raises(RunNotFoundError, match=f"run {missing} does not exist"),
    ):
        monitor.get_status(missing)


async def test_async_get_status(shop_runs: dict[str, Any]) -> None:
    async with AsyncMonitor(shop_runs["url"], max_pool_size=1) as monitor:
        found = await monitor.get_status(shop_runs["done"], include_tasks=True)
        with pytest.raises(RunNotFoundError):
            await monitor.get_status(uuid.uuid4())
    with Monitor(shop_runs["url"], max_pool_size=1) as sync_monitor:
        assert found == sync_monitor.get_status(shop_runs["done"], include_tasks=True)


def test_cancelled_and_retried_runs(shop_runs: dict[str, Any]) -> None:
    """Run control shows in every view: a cancelled run has its time and reason (and a
    duration up to the cancellation), history lists it as finished, a retry names its origin."""
    with psycopg.connect(shop_runs["url"], autocommit=True) as conn:
        conn.execute("SELECT pgflow.cancel_run(%s, 'operator said so')", (shop_runs["busy"],))
        row = conn.execute("SELECT run_id FROM pgflow.retry_run(%s)", (shop_runs["broken"],))
        (retry_id,) = row.fetchone() or (None,)
    with Monitor(shop_runs["url"], max_pool_size=1) as monitor:
        cancelled = monitor.get_status(shop_runs["busy"])
        retry = monitor.get_status(retry_id)
        history = monitor.history(limit=10)
        listed = {r.run_id: r for r in monitor.list_runs(status="cancelled").runs}
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == "operator said so"
    assert cancelled.cancelled_at is not None
    assert cancelled.duration == cancelled.cancelled_at - cancelled.started_at
    assert {s.status for s in cancelled.steps} == {"completed", "cancelled"}
    assert retry.retry_of == shop_runs["broken"]
    assert retry.status == "started"
    assert history[0].run_id == shop_runs["busy"]  # the latest to finish
    assert history[0].cancel_reason == "operator said so"
    assert {r.run_id for r in history} == {
        shop_runs["done"],
        shop_runs["broken"],
        shop_runs["busy"],
    }
    assert list(listed) == [shop_runs["busy"]]
    assert listed[shop_runs["busy"]].cancelled_at == cancelled.cancelled_at
    assert json.loads(json.dumps(cancelled.as_dict()))["cancel_reason"] == "operator said so"
