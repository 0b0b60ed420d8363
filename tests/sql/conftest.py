"""Helpers for the SQL core tests: every test gets a fresh database from the pgflow plugin."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from pgflow.testing import install_realtime_stub

Conn = psycopg.Connection[Any]
StepSpec = tuple[str, Sequence[str]] | tuple[str, Sequence[str], dict[str, Any]]


def q(conn: Conn, query: str, *params: Any) -> list[dict[str, Any]]:
    """Run ``query`` and return all rows (empty list for statements without a result)."""
    cur = conn.execute(query, params or None)
    return cur.fetchall() if cur.description else []


def one(conn: Conn, query: str, *params: Any) -> dict[str, Any]:
    rows = q(conn, query, *params)
    assert len(rows) == 1, rows
    return rows[0]


def scalar(conn: Conn, query: str, *params: Any) -> Any:
    row = one(conn, query, *params)
    return next(iter(row.values()))


def jb(value: Any) -> str:
    """A Python value as JSON text, to pass as ``%s::jsonb``."""
    return json.dumps(value)


@dataclass
class Core:
    """Thin wrappers around the pgflow SQL API, as a worker would call it."""

    conn: Conn
    worker_id: uuid.UUID

    # -- definitions ------------------------------------------------------------------------
    def create_flow(self, slug: str, **opts: Any) -> dict[str, Any]:
        named = "".join(f", {k} => %s" for k in opts)
        return one(self.conn, f"SELECT * FROM pgflow.create_flow(%s{named})", slug, *opts.values())

    def add_step(
        self, flow: str, step: str, deps: Sequence[str] = (), **opts: Any
    ) -> dict[str, Any]:
        named = "".join(f", {k} => %s" for k in opts)
        return one(
            self.conn,
            f"SELECT * FROM pgflow.add_step(%s, %s, %s::text[]{named})",
            flow,
            step,
            list(deps),
            *opts.values(),
        )

    def flow(self, slug: str, steps: Sequence[StepSpec], **flow_opts: Any) -> str:
        """Create a flow with steps given as ``(slug, deps[, options])``."""
        self.create_flow(slug, **flow_opts)
        for spec in steps:
            opts: dict[str, Any] = dict(spec[2]) if len(spec) > 2 else {}  # type: ignore[misc]
            self.add_step(slug, spec[0], spec[1], **opts)
        return slug

    # -- runs -------------------------------------------------------------------------------
    def start_flow(
        self, flow: str, payload: Any, run_id: uuid.UUID | None = None
    ) -> dict[str, Any]:
        return one(
            self.conn,
            "SELECT * FROM pgflow.start_flow(%s, %s::jsonb, %s)",
            flow,
            None if payload is None else jb(payload),
            run_id,
        )

    def read_ids(self, flow: str, qty: int = 1000, vt: int = 2) -> list[int]:
        """What a worker's first polling phase does: read visible messages."""
        rows = q(self.conn, "SELECT msg_id FROM pgmq.read(%s, %s, %s)", flow, vt, qty)
        return [r["msg_id"] for r in rows]

    def start_tasks(self, flow: str, msg_ids: Sequence[int]) -> list[dict[str, Any]]:
        return q(
            self.conn,
            "SELECT * FROM pgflow.start_tasks(%s, %s::bigint[], %s)",
            flow,
            list(msg_ids),
            self.worker_id,
        )

    def poll(self, flow: str, qty: int = 1000) -> list[dict[str, Any]]:
        """Both polling phases: read visible messages and start their tasks."""
        ids = self.read_ids(flow, qty)
        return self.start_tasks(flow, ids) if ids else []

    def complete(
        self, run_id: uuid.UUID, step: str, task_index: int, output: Any
    ) -> list[dict[str, Any]]:
        return q(
            self.conn,
            "SELECT * FROM pgflow.complete_task(%s, %s, %s, %s::jsonb)",
            run_id,
            step,
            task_index,
            None if output is None else jb(output),
        )

    def fail(
        self, run_id: uuid.UUID, step: str, task_index: int, error: str | None
    ) -> list[dict[str, Any]]:
        return q(
            self.conn,
            "SELECT * FROM pgflow.fail_task(%s, %s, %s, %s)",
            run_id,
            step,
            task_index,
            error,
        )

    def run_until_done(
        self, flow: str, handler: Callable[[dict[str, Any]], Any], max_rounds: int = 50
    ) -> None:
        """Poll and complete tasks with ``handler(task) -> output`` until nothing is left."""
        for _ in range(max_rounds):
            tasks = self.poll(flow)
            if not tasks:
                return
            for task in tasks:
                self.complete(task["run_id"], task["step_slug"], task["task_index"], handler(task))
        raise AssertionError("flow did not settle")

    # -- observations -----------------------------------------------------------------------
    def run(self, run_id: uuid.UUID) -> dict[str, Any]:
        return one(self.conn, "SELECT * FROM pgflow.runs WHERE run_id = %s", run_id)

    def states(self, run_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        rows = q(self.conn, "SELECT * FROM pgflow.step_states WHERE run_id = %s", run_id)
        return {r["step_slug"]: r for r in rows}

    def tasks(self, run_id: uuid.UUID, step: str | None = None) -> list[dict[str, Any]]:
        return q(
            self.conn,
            "SELECT * FROM pgflow.step_tasks"
            " WHERE run_id = %s AND (%s::text IS NULL OR step_slug = %s)"
            " ORDER BY step_slug, task_index",
            run_id,
            step,
            step,
        )

    def task(self, run_id: uuid.UUID, step: str, task_index: int = 0) -> dict[str, Any]:
        return one(
            self.conn,
            "SELECT * FROM pgflow.step_tasks"
            " WHERE run_id = %s AND step_slug = %s AND task_index = %s",
            run_id,
            step,
            task_index,
        )

    def queue(self, flow: str) -> list[dict[str, Any]]:
        """Messages still in the queue, with seconds until visible (``vt_in``)."""
        return q(
            self.conn,
            f"SELECT msg_id, read_ct, message, extract(epoch FROM vt - clock_timestamp())::float"
            f" AS vt_in FROM pgmq.{_table('q', flow)} ORDER BY msg_id",
        )

    def archive(self, flow: str) -> list[dict[str, Any]]:
        return q(
            self.conn,
            f"SELECT msg_id, message FROM pgmq.{_table('a', flow)} ORDER BY msg_id",
        )

    def make_visible(self, flow: str) -> None:
        """Skip any visibility delay (retry backoff, start_delay, timeout)."""
        self.conn.execute(f"UPDATE pgmq.{_table('q', flow)} SET vt = clock_timestamp()")


def _table(prefix: str, flow: str) -> str:
    return f"{prefix}_{flow.lower()}"


@pytest.fixture
def core(pgflow_conn: Conn) -> Core:
    worker_id = uuid.uuid4()
    pgflow_conn.execute(
        "INSERT INTO pgflow.workers (worker_id, queue_name, function_name)"
        " VALUES (%s, 'any', 'tests')",
        (worker_id,),
    )
    return Core(pgflow_conn, worker_id)


@dataclass
class Realtime:
    """Events recorded by the realtime stub, in the order they were sent."""

    conn: Conn

    def events(self, run_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        # ctid follows insertion order in this append-only table: it is the send order.
        return q(
            self.conn,
            "SELECT event, topic, payload, private, extension FROM realtime.messages"
            " WHERE %s::uuid IS NULL OR topic = 'pgflow:run:' || %s::text ORDER BY ctid",
            run_id,
            run_id,
        )

    def names(self, run_id: uuid.UUID | None = None) -> list[str]:
        return [e["event"] for e in self.events(run_id)]


@pytest.fixture
def realtime(pgflow_conn: Conn) -> Realtime:
    install_realtime_stub(pgflow_conn)
    return Realtime(pgflow_conn)


class Listener:
    """A second connection LISTENing on ``channel`` (every event: pgflow_events)."""

    def __init__(self, url: str, channel: str = "pgflow_events") -> None:
        self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def drain(self, timeout: float = 0.5) -> list[dict[str, Any]]:
        got = [json.loads(n.payload) for n in self.conn.notifies(timeout=timeout)]
        for n in got:
            assert set(n) == {"event_type", "run_id", "flow_slug", "step_slug", "status"}
        return got

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def listener(pgflow_database_url: str) -> Iterator[Listener]:
    lst = Listener(pgflow_database_url)
    try:
        yield lst
    finally:
        lst.close()


@pytest.fixture
def worker_listener(pgflow_database_url: str) -> Iterator[Listener]:
    """A connection LISTENing where workers do: pgflow_worker_events."""
    lst = Listener(pgflow_database_url, "pgflow_worker_events")
    try:
        yield lst
    finally:
        lst.close()
