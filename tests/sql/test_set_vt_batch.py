"""set_vt_batch: per-message visibility in one statement."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import Conn, q


@pytest.fixture
def queue(pgflow_conn: Conn) -> list[int]:
    pgflow_conn.execute("SELECT pgmq.create('jobs')")
    rows = q(
        pgflow_conn,
        "SELECT * FROM pgmq.send_batch('jobs',"
        " ARRAY['{\"n\":1}', '{\"n\":2}', '{\"n\":3}']::jsonb[])",
    )
    return [next(iter(r.values())) for r in rows]


def test_sets_each_offset(pgflow_conn: Conn, queue: list[int]) -> None:
    rows = q(
        pgflow_conn,
        "SELECT *, extract(epoch FROM vt - clock_timestamp())::float AS vt_in"
        " FROM pgflow.set_vt_batch('jobs', %s, %s)",
        queue[:2],
        [10, 100],
    )
    assert list(rows[0])[:6] == [
        "msg_id",
        "read_ct",
        "enqueued_at",
        "vt",
        "message",
        "headers",
    ]
    by_id = {r["msg_id"]: r for r in rows}
    assert set(by_id) == set(queue[:2])
    assert 9 < by_id[queue[0]]["vt_in"] <= 10
    assert 99 < by_id[queue[1]]["vt_in"] <= 100
    assert by_id[queue[0]]["message"] == {"n": 1}
    assert by_id[queue[0]]["read_ct"] == 0
    third = q(
        pgflow_conn,
        "SELECT vt <= clock_timestamp() AS visible FROM pgmq.q_jobs WHERE msg_id = %s",
        queue[2],
    )
    assert third == [{"visible": True}]


@pytest.mark.parametrize(
    ("ids", "offsets"),
    [(None, [1]), ([1], None), ([], [1]), ([1], []), ([], []), (None, None)],
)
def test_null_or_empty_arrays_give_an_empty_set(
    pgflow_conn: Conn, queue: list[int], ids: list[int] | None, offsets: list[int] | None
) -> None:
    rows = q(
        pgflow_conn,
        "SELECT * FROM pgflow.set_vt_batch('jobs', %s::bigint[], %s::int[])",
        ids,
        offsets,
    )
    assert rows == []


def test_length_mismatch(pgflow_conn: Conn, queue: list[int]) -> None:
    with pytest.raises(
        psycopg.errors.RaiseException,
        match=r"^msg_ids length \(2\) must equal vt_offsets length \(1\)",
    ):
        q(
            pgflow_conn,
            "SELECT * FROM pgflow.set_vt_batch('jobs', %s::bigint[], %s::int[])",
            queue[:2],
            [5],
        )


def test_unknown_queue(pgflow_conn: Conn) -> None:
    with pytest.raises(
        psycopg.errors.UndefinedTable, match=r'relation "pgmq.q_nope" does not exist'
    ):
        q(pgflow_conn, "SELECT * FROM pgflow.set_vt_batch('nope', ARRAY[1]::bigint[], ARRAY[1])")


def test_missing_ids_are_skipped(pgflow_conn: Conn, queue: list[int]) -> None:
    rows = q(
        pgflow_conn,
        "SELECT msg_id FROM pgflow.set_vt_batch('jobs', %s::bigint[], ARRAY[1, 1])",
        [queue[0], 424242],
    )
    assert rows == [{"msg_id": queue[0]}]


def test_queue_name_is_an_identifier_not_sql(pgflow_conn: Conn) -> None:
    with pytest.raises(psycopg.Error):
        q(
            pgflow_conn,
            "SELECT * FROM pgflow.set_vt_batch('x; DROP TABLE pgflow.flows',"
            " ARRAY[1]::bigint[], ARRAY[1])",
        )
    assert q(pgflow_conn, "SELECT to_regclass('pgflow.flows') IS NOT NULL AS ok") == [{"ok": True}]
