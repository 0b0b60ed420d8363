"""Least-privilege roles (docs/roles.md): an admin installs, a worker runs its flows' tasks, a
monitor reads; each does its job and is refused the rest with PostgreSQL's own error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgflow import Client, Flow, install
from pgflow.flows import ensure_flow
from pgflow.monitor import Monitor
from pgflow.testing import TestDatabaseServer
from pgflow.testing._worker import running_worker

served = Flow("served", max_attempts=1)


@served.step
def shout(run: dict[str, str]) -> str:
    return run["word"].upper()


other = Flow("other", max_attempts=1)


@other.step
def whisper(run: dict[str, str]) -> str:
    return run["word"].lower()


#: Functions deliberately without a fixed search_path: pgflow core 0.8.1 defines them so and this
#: core matches its definitions; both qualify every name, so a caller's search_path is harmless.
WITHOUT_SEARCH_PATH = {"cascade_complete_taskless_steps", "set_vt_batch"}
#: 0.8.1's functions that run with their owner's rights, for browser clients.
SECURITY_DEFINERS = {"start_flow_with_states", "get_run_with_states"}


@dataclass(frozen=True)
class Roles:
    admin: str
    worker: str
    monitor: str

    def url(self, base: str, role: str) -> str:
        return make_conninfo(base, user=role)


@pytest.fixture
def roles(pgflow_test_server: TestDatabaseServer) -> Iterator[Roles]:
    suffix = uuid.uuid4().hex[:8]
    made = Roles(f"pgflow_admin_{suffix}", f"pgflow_worker_{suffix}", f"pgflow_monitor_{suffix}")
    names = (made.admin, made.worker, made.monitor)
    with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        yield made
    finally:
        with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as conn:
            for name in names:  # their objects went with the database; only grants remain
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def database(
    roles: Roles, pgflow_test_server: TestDatabaseServer, pgflow_empty_database_url: str
) -> str:
    """A database the admin role installed pgflow into, with the other two roles granted."""
    dbname = conninfo_to_dict(pgflow_empty_database_url)["dbname"]
    with psycopg.connect(pgflow_test_server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(str(dbname)), sql.Identifier(roles.admin)
            )
        )
    admin_url = roles.url(pgflow_empty_database_url, roles.admin)
    install(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        ensure_flow(conn, served)
        ensure_flow(conn, other)
        conn.execute("SELECT pgflow.grant_worker_role(%s, %s)", (roles.worker, ["served"]))
        conn.execute("SELECT pgflow.grant_monitor_role(%s)", (roles.monitor,))
    return pgflow_empty_database_url


def refused(url: str, query: str, params: Any = None) -> str:
    """The first line of the error PostgreSQL gives for ``query`` run at ``url``."""
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute(query, params)
    return str(raised.value).splitlines()[0]


def test_admin_installs_and_upgrades_without_being_superuser(roles: Roles, database: str) -> None:
    admin_url = roles.url(database, roles.admin)
    assert install(admin_url).up_to_date
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        owner = conn.execute(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'pgflow'"
        ).fetchone()
    assert row == (False, False)
    assert owner == (roles.admin,)


def test_worker_role_runs_its_flows(roles: Roles, database: str) -> None:
    worker_url = roles.url(database, roles.worker)
    admin_url = roles.url(database, roles.admin)
    with running_worker([served], worker_url), Client(admin_url) as client:
        run = client.start_flow_sync(served, {"word": "hey"}, timeout=30)
    assert (run.status, run.output) == ("completed", {"shout": "HEY"})


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (
            "SELECT pgflow.start_flow('served', '{}')",
            "permission denied for table runs",
        ),
        (
            "SELECT pgflow.start_flow_with_states('served', '{}')",
            "permission denied for function start_flow_with_states",
        ),
        ("SELECT pgflow.create_flow('mine')", "permission denied for table flows"),
        ("SELECT pgflow.add_step('served', 'extra')", "permission denied for table flows"),
        ("SELECT pgflow.delete_flow_and_data('served')", "must be owner of table q_served"),
        ("DELETE FROM pgflow.runs", "permission denied for table runs"),
        ("SELECT * FROM pgflow.prune_runs(interval '0')", "permission denied for table workers"),
        ("SELECT * FROM pgmq.read('other', 30, 1)", "permission denied for table q_other"),
        (
            "SELECT pgflow.grant_worker_role(current_user, ARRAY['other'])",
            "permission denied for function start_flow_with_states",
        ),
    ],
)
def test_worker_role_is_refused_the_rest(
    roles: Roles, database: str, query: str, error: str
) -> None:
    assert refused(roles.url(database, roles.worker), query) == error


def test_worker_role_cannot_take_tasks_of_other_flows(roles: Roles, database: str) -> None:
    with Client(roles.url(database, roles.admin)) as client:
        run_id = client.start_flow(other, {"word": "Psst"}).run_id
    worker_id = uuid.uuid4()
    with psycopg.connect(roles.url(database, roles.worker), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) "
            "VALUES (%s, 'other', 'intruder')",
            (worker_id,),
        )
        (message_id,) = conn.execute(
            "SELECT message_id FROM pgflow.step_tasks WHERE run_id = %s", (run_id,)
        ).fetchone() or (None,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
            conn.execute(
                "SELECT * FROM pgflow.start_tasks('other', %s, %s)", ([message_id], worker_id)
            )
    assert raised.value.diag.message_primary == "permission denied for table q_other"
    with psycopg.connect(roles.url(database, roles.admin)) as conn:
        (status,) = conn.execute(
            "SELECT status FROM pgflow.step_tasks WHERE run_id = %s", (run_id,)
        ).fetchone() or (None,)
    assert status == "queued"


def test_monitor_role_reads_everything(roles: Roles, database: str) -> None:
    admin_url = roles.url(database, roles.admin)
    monitor_url = roles.url(database, roles.monitor)
    with Client(admin_url) as client:
        run_id = client.start_flow(served, {"word": "hi"}).run_id
    with Monitor(monitor_url) as monitor:
        assert monitor.get_status(run_id).status == "started"
        assert [r.run_id for r in monitor.list_runs().runs] == [run_id]
        assert {q.flow_slug for q in monitor.queues()} == {"served", "other"}
        assert {f.flow_slug for f in monitor.flows()} == {"served", "other"}
        monitor.metrics()
        monitor.workers()
    with psycopg.connect(monitor_url) as conn:
        (states,) = (
            conn.execute("SELECT pgflow.get_run_with_states(%s)", (run_id,)).fetchone() or ()
        )
    assert states["run"]["run_id"] == str(run_id)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("SELECT pgflow.start_flow('served', '{}')", "permission denied for table runs"),
        (
            "SELECT pgflow.start_flow_with_states('served', '{}')",
            "permission denied for function start_flow_with_states",
        ),
        ("UPDATE pgflow.runs SET status = 'failed'", "permission denied for table runs"),
        ("SELECT pgflow.create_flow('mine')", "permission denied for table flows"),
        ("SELECT pgmq.send('served', '{}')", "permission denied for table q_served"),
        ("SELECT * FROM pgflow.prune_runs(interval '0')", "permission denied for table workers"),
    ],
)
def test_monitor_role_is_refused_the_rest(
    roles: Roles, database: str, query: str, error: str
) -> None:
    assert refused(roles.url(database, roles.monitor), query) == error


def test_granting_an_unknown_flow_is_refused(roles: Roles, database: str) -> None:
    error = refused(
        roles.url(database, roles.admin),
        "SELECT pgflow.grant_worker_role(%s, %s)",
        (roles.worker, ["served", "ghost"]),
    )
    assert error == f"cannot grant worker role {roles.worker}: no flow 'ghost'"


def test_every_function_has_a_fixed_search_path_and_runs_as_its_caller(
    pgflow_conn: psycopg.Connection[Any],
) -> None:
    functions = pgflow_conn.execute(
        "SELECT proname, coalesce(proconfig, '{}') AS config, prosecdef FROM pg_proc "
        "WHERE pronamespace = 'pgflow'::regnamespace ORDER BY proname"
    ).fetchall()
    assert len(functions) > 30
    unfixed = {f["proname"] for f in functions if 'search_path=""' not in f["config"]}
    assert unfixed == WITHOUT_SEARCH_PATH
    assert {f["proname"] for f in functions if f["prosecdef"]} == SECURITY_DEFINERS
