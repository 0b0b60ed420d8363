"""_emit_event: Supabase realtime when present, and a compact NOTIFY always (unless off): every
event on pgflow_events, those a worker acts on also on pgflow_worker_events."""

from __future__ import annotations

import json

import psycopg

from pgflow.testing import install_realtime_stub

from .conftest import Conn, Core, Listener, Realtime, one, q, scalar


def test_works_without_realtime(core: Core, listener: Listener) -> None:
    assert scalar(core.conn, "SELECT to_regnamespace('realtime') IS NULL AS absent") is True
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    core.poll("f")
    core.complete(run["run_id"], "a", 1 - 1, "x")
    assert [n["event_type"] for n in listener.drain()] == [
        "run:started",
        "step:started",
        "step:completed",
        "run:completed",
    ]


def test_realtime_installed_later_is_picked_up(core: Core) -> None:
    core.flow("f", [("a", []), ("b", ["a"])])
    run = core.start_flow("f", {})
    core.poll("f")
    install_realtime_stub(core.conn)
    core.complete(run["run_id"], "a", 0, "x")
    assert Realtime(core.conn).names(run["run_id"]) == ["step:a:completed", "step:b:started"]


def test_events_use_the_run_topic_and_public_broadcast(core: Core, realtime: Realtime) -> None:
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    for e in realtime.events():
        assert e["topic"] == f"pgflow:run:{run['run_id']}"
        assert e["private"] is False
        assert e["extension"] == "broadcast"
        assert "id" in e["payload"]


def test_notify_can_be_turned_off_per_session(
    core: Core, listener: Listener, realtime: Realtime
) -> None:
    core.flow("f", [("a", [])])
    for value in ("off", "false", "0", "no", "OFF"):
        core.conn.execute(f"SET pgflow.notify_events = '{value}'")
        core.start_flow("f", {})
        assert listener.drain(0.2) == [], value
    core.conn.execute("SET pgflow.notify_events = on")
    core.start_flow("f", {})
    assert len(listener.drain()) == 2
    assert len(realtime.events()) == 12, "realtime is not affected by the switch"


def test_notify_can_be_turned_off_per_database(
    pgflow_conn: Conn, pgflow_database_url: str, listener: Listener
) -> None:
    dbname = scalar(pgflow_conn, "SELECT current_database() AS d")
    pgflow_conn.execute(f'ALTER DATABASE "{dbname}" SET pgflow.notify_events = off')
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("SELECT pgflow.create_flow('f')")
        conn.execute("SELECT pgflow.add_step('f', 'a')")
        conn.execute("SELECT pgflow.start_flow('f', '{}')")
    assert listener.drain(0.3) == []


def test_notify_payload_stays_small_whatever_the_data(core: Core, listener: Listener) -> None:
    slug = "s" * 47
    step = "t" * 128
    core.flow(slug, [(step, [])])
    big = {"blob": "x" * 100_000}
    run = core.start_flow(slug, big)
    core.poll(slug)
    core.complete(run["run_id"], step, 0, big)
    notes = listener.drain()
    assert len(notes) == 4
    for n in notes:
        assert len(json.dumps(n)) < 1000
    assert notes[1]["step_slug"] == step


def test_notifications_are_sent_on_commit_only(core: Core, listener: Listener) -> None:
    core.flow("f", [("a", [])])
    with core.conn.transaction():
        core.start_flow("f", {})
        assert listener.drain(0.2) == []
    assert len(listener.drain()) == 2
    with core.conn.transaction(force_rollback=True):
        core.start_flow("f", {})
    assert listener.drain(0.2) == []


def test_failing_realtime_send_does_not_break_the_flow(core: Core, realtime: Realtime) -> None:
    core.conn.execute(
        "ALTER TABLE realtime.messages ADD CONSTRAINT no_inserts CHECK (false) NOT VALID"
    )
    core.flow("f", [("a", [])])
    run = core.start_flow("f", {})
    assert run["status"] == "started"
    assert realtime.events() == []


def test_stub_is_idempotent_and_keeps_an_existing_send(pgflow_conn: Conn) -> None:
    pgflow_conn.execute("CREATE SCHEMA realtime")
    pgflow_conn.execute(
        "CREATE FUNCTION realtime.send(payload jsonb, event text, topic text,"
        " private boolean DEFAULT true)"
        " RETURNS void LANGUAGE sql AS 'SELECT NULL'"
    )
    install_realtime_stub(pgflow_conn)
    install_realtime_stub(pgflow_conn)
    body = scalar(
        pgflow_conn,
        "SELECT prosrc FROM pg_proc"
        " WHERE proname = 'send' AND pronamespace = 'realtime'::regnamespace",
    )
    assert body == "SELECT NULL"
    assert q(pgflow_conn, "SELECT count(*) AS n FROM realtime.messages") == [{"n": 0}]


def test_stub_keeps_an_id_that_is_already_there(pgflow_conn: Conn) -> None:
    install_realtime_stub(pgflow_conn)
    pgflow_conn.execute("SELECT realtime.send('{\"id\": 7, \"k\": 1}', 'ev', 'top', false)")
    pgflow_conn.execute("SELECT realtime.send('{\"k\": 2}', 'ev2', 'top')")
    rows = q(
        pgflow_conn,
        "SELECT payload, event, topic, private, extension FROM realtime.messages ORDER BY ctid",
    )
    assert rows[0] == {
        "payload": {"id": 7, "k": 1},
        "event": "ev",
        "topic": "top",
        "private": False,
        "extension": "broadcast",
    }
    assert rows[1]["payload"]["k"] == 2
    assert "id" in rows[1]["payload"]
    assert rows[1]["private"] is True


def test_workers_channel_carries_new_tasks_and_cancellations_only(
    core: Core, listener: Listener, worker_listener: Listener
) -> None:
    core.flow("f", [("a", []), ("b", ["a"]), ("c", ["a"])])
    done = core.start_flow("f", {})
    core.poll("f")
    core.complete(done["run_id"], "a", 0, "x")
    core.poll("f")
    core.complete(done["run_id"], "b", 0, "y")
    core.complete(done["run_id"], "c", 0, "z")
    cancelled = core.start_flow("f", {})
    one(core.conn, "SELECT * FROM pgflow.cancel_run(%s, 'enough')", cancelled["run_id"])
    everything = listener.drain()
    for_workers = worker_listener.drain()
    assert {n["event_type"] for n in everything} >= {
        "run:started",
        "step:completed",
        "run:completed",
    }
    # The same payloads, in the same order, as the events of those two kinds on pgflow_events.
    assert for_workers == [
        n for n in everything if n["event_type"] in ("step:started", "run:cancelled")
    ]
    assert [(n["event_type"], n["step_slug"]) for n in for_workers] == [
        ("step:started", "a"),
        ("step:started", "b"),
        ("step:started", "c"),
        ("step:started", "a"),
        ("run:cancelled", None),
    ]
    assert for_workers[-1]["run_id"] == str(cancelled["run_id"])


def test_workers_channel_follows_the_notify_switch(
    core: Core, listener: Listener, worker_listener: Listener
) -> None:
    core.flow("f", [("a", [])])
    core.conn.execute("SET pgflow.notify_events = off")
    core.start_flow("f", {})
    assert listener.drain(0.2) == []
    assert worker_listener.drain(0.2) == []
