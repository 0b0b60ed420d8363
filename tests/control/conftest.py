"""Run control tests build on the SQL core helpers (the ``core``, ``realtime`` and ``listener``
fixtures of tests/sql) and add what cancel, retry and resume need on top."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.conftest import Conn, Core, Listener, Realtime, core, listener, q, realtime

__all__ = ["Conn", "Core", "Listener", "Realtime", "core", "listener", "realtime"]


def cancel(core: Core, run_id: uuid.UUID, reason: str | None = None) -> dict[str, Any]:
    (row,) = q(core.conn, "SELECT * FROM pgflow.cancel_run(%s, %s)", run_id, reason)
    return row


def retry(core: Core, run_id: uuid.UUID) -> dict[str, Any]:
    (row,) = q(core.conn, "SELECT * FROM pgflow.retry_run(%s)", run_id)
    return row


def resume(core: Core, run_id: uuid.UUID) -> dict[str, Any]:
    (row,) = q(core.conn, "SELECT * FROM pgflow.resume_run(%s)", run_id)
    return row


def everything(core: Core, flow: str) -> dict[str, Any]:
    """Every row a run-control call may touch, to show that a refused call changed nothing."""
    return {
        "runs": q(core.conn, "SELECT * FROM pgflow.runs ORDER BY run_id"),
        "step_states": q(core.conn, "SELECT * FROM pgflow.step_states ORDER BY run_id, step_slug"),
        "step_tasks": q(
            core.conn, "SELECT * FROM pgflow.step_tasks ORDER BY run_id, step_slug, task_index"
        ),
        "queue": [(m["msg_id"], m["read_ct"]) for m in core.queue(flow)],
        "archive": core.archive(flow),
    }


class Background:
    """A statement run on a connection of its own in a thread, so that a test can hold locks
    on another connection and watch it wait."""

    def __init__(self, url: str, work: Callable[[Conn], Any]) -> None:
        self.conn: Conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        self.pid = self.conn.info.backend_pid
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[Conn], Any]) -> None:
        try:
            self.result = work(self.conn)
        except BaseException as exc:  # handed to the test through join()
            self.error = exc

    def join(self, timeout: float = 10) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the background statement did not finish"
        self.conn.close()
        if self.error is not None:
            raise self.error
        return self.result


def wait_until_blocked(observer: Conn, pid: int, timeout: float = 10) -> None:
    """Until backend ``pid`` waits for a row lock held by another transaction."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = q(
            observer,
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
            pid,
        )
        if rows and rows[0]["wait_event_type"] == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


@pytest.fixture
def second_conn(pgflow_database_url: str) -> Iterator[Conn]:
    """Another connection to the same database, for transactions held open by a test."""
    with psycopg.connect(pgflow_database_url, row_factory=dict_row) as conn:
        yield conn
