"""Each flow's queue statements (pgflow._queue_<flow>, used through pgflow._on_queue): made with
the queue, gone with the flow, made again by the installer, and doing exactly what pgmq's own
functions do, which serve a queue without them."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from pgflow import install

from .conftest import Conn, Core, q, scalar

_SIGNATURE = "(text, bigint[], jsonb[], integer, integer)"


def _has_statements(conn: Conn, queue: str) -> bool:
    return bool(scalar(conn, "SELECT to_regproc(%s) IS NOT NULL AS t", f"pgflow._queue_{queue}"))


def _op(conn: Conn, queue: str, op: str, **args: Any) -> list[int]:
    named = "".join(f", {name} => %s" for name in args)
    ids = scalar(conn, f"SELECT pgflow._on_queue(%s, %s{named}) AS ids", queue, op, *args.values())
    return list(ids or [])


def _messages(count: int, offset: int = 0) -> list[str]:
    return [f'{{"n": {offset + i}}}' for i in range(count)]


def _send(conn: Conn, queue: str, messages: list[str], delay: int) -> list[int]:
    return list(
        scalar(
            conn,
            "SELECT pgflow._on_queue(%s, 'send', p_messages => %s::jsonb[], p_seconds => %s)",
            queue,
            messages,
            delay,
        )
        or []
    )


def _rows(conn: Conn, table: str, first_id: int) -> list[dict[str, Any]]:
    """A queue's or archive's rows with what depends on when the test ran taken out: ids
    relative to the queue's first, visibility as seconds after enqueueing (rounded)."""
    return [
        {**r, "msg_id": r["msg_id"] - first_id}
        for r in q(
            conn,
            f"SELECT msg_id, read_ct, message, headers, last_read_at IS NOT NULL AS read_once, "
            f"round(extract(epoch FROM vt - enqueued_at))::int AS visible_after "
            f"FROM pgmq.{table} ORDER BY msg_id",
        )
    ]


def test_a_flows_queue_gets_its_statements_and_loses_them_with_the_flow(core: Core) -> None:
    core.create_flow("kept")
    core.create_flow("gone")
    assert _has_statements(core.conn, "kept")
    assert _has_statements(core.conn, "gone")
    core.conn.execute("SELECT pgflow.delete_flow_and_data('gone')")
    assert not _has_statements(core.conn, "gone")
    assert _has_statements(core.conn, "kept")
    # Creating an existing flow again leaves its statements as they are.
    oid = scalar(core.conn, "SELECT 'pgflow._queue_kept'::regproc::oid AS oid")
    core.create_flow("kept")
    assert scalar(core.conn, "SELECT 'pgflow._queue_kept'::regproc::oid AS oid") == oid


def test_the_queue_statements_do_what_pgmqs_functions_do(core: Core) -> None:
    conn = core.conn
    core.create_flow("own")
    core.create_flow("plain")
    conn.execute(f"DROP FUNCTION pgflow._queue_plain{_SIGNATURE}")  # served by pgmq's functions
    assert _has_statements(conn, "own")
    assert not _has_statements(conn, "plain")

    results: dict[str, Any] = {}
    for queue in ("own", "plain"):
        sent = _send(conn, queue, _messages(3), 0) + _send(conn, queue, _messages(2, 3), 30)
        first = sent[0]
        read = _op(conn, queue, "read", p_seconds=10, p_qty=2)
        read_more = _op(conn, queue, "read", p_seconds=20, p_qty=5)  # the delayed stay hidden
        archived = _op(conn, queue, "archive", p_msg_ids=[read[0], sent[3], -1])
        nothing = _op(conn, queue, "read", p_seconds=10, p_qty=5)
        results[queue] = {
            "sent": [i - first for i in sent],
            "read": [i - first for i in read],
            "read_more": [i - first for i in read_more],
            "archived": [i - first for i in archived],
            "nothing": nothing,
            "queue": _rows(conn, f"q_{queue}", first),
            "archive": _rows(conn, f"a_{queue}", first),
        }
    assert results["own"] == results["plain"]
    own = results["own"]
    assert own["sent"] == [0, 1, 2, 3, 4]
    assert (own["read"], own["read_more"], own["archived"]) == ([0, 1], [2], [0, 3])
    assert [(r["msg_id"], r["read_ct"], r["visible_after"]) for r in own["queue"]] == [
        (1, 1, 10),
        (2, 1, 20),
        (4, 0, 30),
    ]
    assert [r["message"] for r in own["archive"]] == [{"n": 0}, {"n": 3}]
    assert all(r["headers"] is None for r in own["queue"] + own["archive"])


def test_the_statements_follow_the_columns_the_queue_tables_have(core: Core) -> None:
    """A queue of an older layout (no headers, no last_read_at): the statements leave them out."""
    conn = core.conn
    conn.execute(
        "CREATE TABLE pgmq.q_older (msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY, "
        "read_ct int NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(), "
        "vt timestamptz NOT NULL, message jsonb)"
    )
    conn.execute(
        "CREATE TABLE pgmq.a_older (msg_id bigint PRIMARY KEY, read_ct int NOT NULL DEFAULT 0, "
        "enqueued_at timestamptz NOT NULL DEFAULT now(), "
        "archived_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb)"
    )
    conn.execute("SELECT pgflow._create_queue_statements('older')")
    assert _has_statements(conn, "older")
    sent = _send(conn, "older", _messages(2), 0)
    assert _op(conn, "older", "read", p_seconds=5, p_qty=1) == sent[:1]
    assert _op(conn, "older", "archive", p_msg_ids=sent) == sent
    assert q(conn, "SELECT msg_id, read_ct, message FROM pgmq.a_older ORDER BY msg_id") == [
        {"msg_id": sent[0], "read_ct": 1, "message": {"n": 0}},
        {"msg_id": sent[1], "read_ct": 0, "message": {"n": 1}},
    ]
    # No such queue: nothing is made, and using it fails as pgmq fails.
    conn.execute("SELECT pgflow._create_queue_statements('missing')")
    assert not _has_statements(conn, "missing")


def test_the_installer_writes_every_flows_statements_again(
    core: Core, pgflow_database_url: str
) -> None:
    conn = core.conn
    core.create_flow("first")
    core.create_flow("second")
    conn.execute(f"DROP FUNCTION pgflow._queue_first{_SIGNATURE}")
    conn.execute(
        "CREATE OR REPLACE FUNCTION pgflow._queue_second(p_op text, p_msg_ids bigint[], "
        "p_messages jsonb[], p_seconds integer, p_qty integer) RETURNS bigint[] "
        "LANGUAGE sql SET search_path = '' AS 'SELECT NULL::bigint[]'"
    )
    # As after an upgrade that changed the functions: the installer applies them again.
    conn.execute("DELETE FROM pgflow.schema_migrations WHERE kind = 'functions'")
    install(pgflow_database_url)
    assert _has_statements(conn, "first")
    assert (
        scalar(
            conn,
            "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
            "WHERE p.oid = 'pgflow._queue_second'::regproc",
        )
        == "plpgsql"
    )
    assert _send(conn, "second", _messages(1), 0) != []


def test_two_sessions_making_one_queues_statements_wait_for_each_other(
    core: Core, pgflow_database_url: str
) -> None:
    core.create_flow("shared")
    core.conn.execute(f"DROP FUNCTION pgflow._queue_shared{_SIGNATURE}")
    errors: list[BaseException] = []
    with psycopg.connect(pgflow_database_url) as first:
        first.execute("SELECT pgflow.create_flow('shared')")  # makes them, uncommitted

        def second() -> None:
            try:
                with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
                    conn.execute("SELECT pgflow.create_flow('shared')")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the first session's lock
        first.commit()
    thread.join(10)
    assert errors == []
    assert _has_statements(core.conn, "shared")
