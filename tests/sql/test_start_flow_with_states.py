"""start_flow_with_states: start a run and return its snapshot (the TS client's entry point)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from .conftest import Conn, Core, scalar


def test_starts_and_returns_snapshot(core: Core) -> None:
    core.flow("f", [("a", [])])
    run_id = uuid.uuid4()
    snap = scalar(
        core.conn,
        "SELECT pgflow.start_flow_with_states(flow_slug => 'f', input => %s::jsonb,"
        " run_id => %s) AS s",
        '{"q": 1}',
        run_id,
    )
    assert snap["run"]["run_id"] == str(run_id)
    assert snap["run"]["input"] == {"q": 1}
    assert [(s["step_slug"], s["status"]) for s in snap["steps"]] == [("a", "started")]
    assert len(core.queue("f")) == 1


def test_generates_run_id(core: Core) -> None:
    core.flow("f", [("a", [])])
    snap = scalar(core.conn, "SELECT pgflow.start_flow_with_states('f', '{}') AS s")
    assert uuid.UUID(snap["run"]["run_id"])


def test_errors_propagate(core: Core) -> None:
    core.flow("f", [("m", [], {"step_type": "map"})])
    with pytest.raises(psycopg.errors.RaiseException, match="not an array"):
        core.conn.execute("SELECT pgflow.start_flow_with_states('f', '{}')")


def test_definer_rights_let_a_role_with_execute_only_start_runs(
    core: Core, pgflow_conn: Conn, pgflow_database_url: str
) -> None:
    core.flow("f", [("a", [])])
    role = f"pgflow_client_{uuid.uuid4().hex[:8]}"
    pgflow_conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        pgflow_conn.execute(f"GRANT USAGE ON SCHEMA pgflow TO {role}")
        pgflow_conn.execute(
            f"GRANT EXECUTE ON FUNCTION pgflow.start_flow_with_states(text, jsonb, uuid) TO {role}"
        )
        pgflow_conn.execute(f"GRANT EXECUTE ON FUNCTION pgflow.get_run_with_states(uuid) TO {role}")
        url = psycopg.conninfo.make_conninfo(pgflow_database_url, user=role)
        with psycopg.connect(url, autocommit=True) as conn:
            snap = conn.execute("SELECT pgflow.start_flow_with_states('f', '{}')").fetchone()[0]  # type: ignore[index]
            again = conn.execute(
                "SELECT pgflow.get_run_with_states(%s)", (snap["run"]["run_id"],)
            ).fetchone()[0]  # type: ignore[index]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM pgflow.runs")
        assert again["run"]["run_id"] == snap["run"]["run_id"]
    finally:
        pgflow_conn.execute(f"DROP OWNED BY {role}")
        pgflow_conn.execute(f"DROP ROLE {role}")
