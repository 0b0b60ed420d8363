"""Sans-IO operations: the logic of a database operation written once, run sync or async.

An operation is a generator that yields ``(sql, params)`` and receives the result rows (dicts)
of each statement; its return value is the operation's result. :func:`run` and :func:`arun`
execute one on a sync or an async connection, inside one transaction of its own (a savepoint
when the caller already has a transaction open, so that the caller's transaction decides).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

T = TypeVar("T")
Params = Mapping[str, Any] | Sequence[Any] | None
Statement = tuple[str | sql.SQL | sql.Composed, Params]
Rows = list[dict[str, Any]]
Operation = Generator[Statement, Rows, T]


def run(conn: psycopg.Connection[Any], op: Operation[T]) -> T:
    """Execute ``op`` on a sync connection, in one transaction."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        try:
            statement = next(op)
            while True:
                try:
                    cur.execute(statement[0], statement[1])
                    rows: Rows = cur.fetchall() if cur.description is not None else []
                except psycopg.Error as exc:
                    statement = op.throw(exc)
                    continue
                statement = op.send(rows)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def arun(conn: psycopg.AsyncConnection[Any], op: Operation[T]) -> T:
    """Execute ``op`` on an async connection, in one transaction."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        try:
            statement = next(op)
            while True:
                try:
                    await cur.execute(statement[0], statement[1])
                    rows: Rows = await cur.fetchall() if cur.description is not None else []
                except psycopg.Error as exc:
                    statement = op.throw(exc)
                    continue
                statement = op.send(rows)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
