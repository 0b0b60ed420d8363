"""A comparable picture of a database schema, for tests that two install paths agree."""

from __future__ import annotations

from typing import Any

import psycopg

_QUERIES: dict[str, str] = {
    "relations": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'i')
        ORDER BY 1
    """,
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = ANY(%(schemas)s) AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'v', 'm', 'c')
        ORDER BY 1, 2
    """,
    "constraints": """
        SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s)
        ORDER BY 1, 2
    """,
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = ANY(%(schemas)s) ORDER BY 1
    """,
    "functions": r"""
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p')
          -- A flow's queue statements (pgflow._queue_<flow>) belong to the flow, as its
          -- queue's tables do, not to the schema.
          AND p.proname NOT LIKE '\_queue\_%%'
        ORDER BY 1
    """,
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal
        ORDER BY 1, 2
    """,
    "privileges": """
        SELECT n.nspname, coalesce(n.nspacl::text, '') FROM pg_namespace n
        WHERE n.nspname = ANY(%(schemas)s) ORDER BY 1
    """,
    "comments": """
        SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) ORDER BY 1
    """,
}


def schema_snapshot(
    conn: psycopg.Connection[Any], schemas: tuple[str, ...] = ("pgflow",)
) -> dict[str, list[tuple[Any, ...]]]:
    """Relations, columns, constraints, indexes, functions, triggers, grants and comments."""
    picture: dict[str, list[tuple[Any, ...]]] = {}
    with conn.cursor() as cur:
        for key, query in _QUERIES.items():
            cur.execute(query, {"schemas": list(schemas)})
            picture[key] = [
                tuple(row) if not isinstance(row, dict) else tuple(row.values())
                for row in cur.fetchall()
            ]
    return picture
