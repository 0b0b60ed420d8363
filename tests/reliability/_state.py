"""Every row pgflow and pgmq hold, to assert that refused input changed nothing."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

_TABLES = """
    SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('pgflow', 'pgmq') AND c.relkind IN ('r', 'p')
    ORDER BY 1, 2
"""


def database_state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Each table (and queue) of schemas pgflow and pgmq with its rows, in a stable order."""
    state: dict[str, Any] = {}
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        for schema, table in cur.execute(_TABLES).fetchall():
            query = sql.SQL(
                "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') "
                "FROM {}.{} AS t"
            ).format(sql.Identifier(schema), sql.Identifier(table))
            row = cur.execute(query).fetchone()
            assert row is not None
            state[f"{schema}.{table}"] = row[0]
    return state
