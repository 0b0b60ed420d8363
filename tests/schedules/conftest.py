"""Helpers for schedule tests: a tiny flow in the database, and moving a schedule's clock."""

from __future__ import annotations

from typing import Any

import psycopg

from pgflow import Flow

Conn = psycopg.Connection[Any]


def make_flow(conn: Conn, slug: str = "tick") -> None:
    conn.execute("SELECT pgflow.create_flow(%s)", (slug,))
    conn.execute("SELECT pgflow.add_step(%s, 'only')", (slug,))


def backdate(conn: Conn, name: str, minutes: int) -> None:
    """Pretend the schedule was created (and last changed) ``minutes`` ago, and is due."""
    conn.execute(
        """
        UPDATE pgflow.schedules
        SET active_since = active_since - make_interval(mins => %(m)s),
            created_at = created_at - make_interval(mins => %(m)s),
            next_occurrence_at = now() - make_interval(mins => %(m)s)
        WHERE schedule_name = %(name)s
        """,
        {"m": minutes, "name": name},
    )


def run_count(conn: Conn, slug: str = "tick") -> int:
    row = conn.execute("SELECT count(*) AS n FROM pgflow.runs WHERE flow_slug = %s", (slug,))
    found = row.fetchone()
    assert found is not None
    return int(found["n"])


def echo_flow(slug: str = "tick", **kwargs: Any) -> Flow[Any]:
    flow: Flow[Any] = Flow(slug, **kwargs)

    @flow.step
    def only(run: Any) -> Any:
        return run

    return flow
