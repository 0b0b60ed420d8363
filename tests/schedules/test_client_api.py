"""Client.schedule and friends, sync and async, and schedules declared on flows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pgflow import (
    AsyncClient,
    Client,
    Flow,
    FlowDefinitionError,
    FlowNotFoundError,
    InvalidInputError,
    ScheduleNotFoundError,
)
from pgflow._cron import Cron

from .conftest import Conn, backdate, echo_flow, make_flow


def stored(conn: Conn) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT schedule_name, cron, timezone, input, enabled, max_catch_up"
        " FROM pgflow.schedules ORDER BY schedule_name"
    ).fetchall()


def test_schedule_list_change_and_remove(pgflow_conn: Conn) -> None:
    make_flow(pgflow_conn)
    make_flow(pgflow_conn, "other")
    client = Client(conn=pgflow_conn, listen=False)
    created = client.schedule(echo_flow(), "*/5  *  * * *", input={"a": 1})
    assert (created.name, created.flow_slug, created.cron) == ("tick", "tick", "*/5 * * * *")
    assert created.next_occurrence_at is not None
    assert created.next_occurrence_at.minute % 5 == 0
    assert created.next_occurrence_at > created.active_since
    client.schedule("other", "@daily", name="nightly", timezone="Europe/Paris", max_catch_up=3)
    assert [s.name for s in client.list_schedules()] == ["nightly", "tick"]
    assert [s.name for s in client.list_schedules(flow="other")] == ["nightly"]
    nightly = client.get_schedule("nightly")
    assert nightly.next_occurrence_at is not None
    assert nightly.next_occurrence_at.astimezone(ZoneInfo("Europe/Paris")).hour == 0
    assert nightly.as_dict()["timezone"] == "Europe/Paris"
    assert isinstance(nightly.as_dict()["next_occurrence_at"], str)

    # Same cron: the schedule keeps its start; a new cron restarts it from now.
    again = client.schedule("tick", "*/5 * * * *", input={"a": 2})
    assert again.active_since == created.active_since
    assert again.input == {"a": 2}
    changed = client.schedule("tick", "*/10 * * * *", input={"a": 2})
    assert changed.active_since > created.active_since

    paused = client.set_schedule_enabled("tick", False)
    assert (paused.enabled, paused.next_occurrence_at) == (False, None)
    resumed = client.set_schedule_enabled("tick", True)
    assert resumed.enabled
    assert resumed.active_since > changed.active_since

    assert client.unschedule("tick") is True
    assert client.unschedule("tick") is False
    with pytest.raises(ScheduleNotFoundError, match="schedule 'tick' does not exist"):
        client.get_schedule("tick")
    with pytest.raises(ScheduleNotFoundError):
        client.set_schedule_enabled("tick", True)


def test_overdue_schedules_show_it(pgflow_conn: Conn) -> None:
    make_flow(pgflow_conn)
    client = Client(conn=pgflow_conn, listen=False)
    client.schedule("tick", "* * * * *")
    backdate(pgflow_conn, "tick", 10)
    schedule = client.get_schedule("tick")
    assert schedule.overdue_since == Cron.parse("* * * * *").next_after(schedule.active_since)
    assert schedule.next_occurrence_at is not None
    assert schedule.next_occurrence_at > schedule.overdue_since + timedelta(minutes=9)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cron": "* * * *"}, InvalidInputError, "5 fields"),
        ({"cron": "* 25 * * *"}, InvalidInputError, "hour field: 25 is out of range"),
        ({"timezone": "Nowhere/City"}, InvalidInputError, "unknown time zone 'Nowhere/City'"),
        ({"name": "has space"}, InvalidInputError, "schedule name 'has space' is invalid"),
        ({"max_catch_up": 0}, InvalidInputError, "max_catch_up must be between 1 and 1000"),
        ({"input": {1, 2}}, InvalidInputError, "not JSON-serialisable"),
        ({"flow": "missing"}, FlowNotFoundError, "flow 'missing' does not exist"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    pgflow_conn: Conn, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    make_flow(pgflow_conn)
    client = Client(conn=pgflow_conn, listen=False)
    client.schedule("tick", "0 * * * *", input=[1])
    before = stored(pgflow_conn)
    call: dict[str, Any] = {"flow": "tick", "cron": "* * * * *", **kwargs}
    with pytest.raises(error, match=message):
        client.schedule(call.pop("flow"), call.pop("cron"), **call)
    assert stored(pgflow_conn) == before


def test_root_map_flow_needs_an_array_input(pgflow_conn: Conn) -> None:
    flow: Flow[list[int]] = Flow("tick")

    @flow.map()
    def double(n: int) -> int:
        return 2 * n

    client = Client(conn=pgflow_conn, listen=False)
    client.ensure_flow(flow)
    with pytest.raises(InvalidInputError, match="input must be an array"):
        client.schedule(flow, "* * * * *", input={"n": 1})
    assert stored(pgflow_conn) == []


async def test_async_client_has_the_same_api(pgflow_database_url: str, pgflow_conn: Conn) -> None:
    make_flow(pgflow_conn)
    async with AsyncClient(pgflow_database_url, listen=False) as client:
        schedule = await client.schedule("tick", "0 12 * * mon-fri", timezone="Asia/Kolkata")
        assert schedule.next_occurrence_at is not None
        assert schedule.next_occurrence_at.minute == 30  # 12:00 IST is 06:30 UTC
        assert [s.name for s in await client.list_schedules(flow="tick")] == ["tick"]
        assert (await client.get_schedule("tick")).cron == "0 12 * * mon-fri"
        assert not (await client.set_schedule_enabled("tick", False)).enabled
        assert await client.unschedule("tick") is True
        assert await client.list_schedules() == []


def test_schedules_declared_on_flows() -> None:
    flow = echo_flow(schedule="*/5 * * * *", schedule_input={"k": 1})
    flow.schedule("0 3 * * *", name="nightly", input={"k": 2}, timezone="Europe/Paris")
    assert [(s.name, s.cron, s.input, s.timezone) for s in flow.schedules] == [
        ("tick", "*/5 * * * *", {"k": 1}, "UTC"),
        ("nightly", "0 3 * * *", {"k": 2}, "Europe/Paris"),
    ]
    assert echo_flow().schedules == ()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: echo_flow(schedule="* * *"), "flow 'tick': schedule 'tick': a cron expression"),
        (lambda: echo_flow(schedule_input={"a": 1}), "schedule_input is given without a schedule"),
        (
            lambda: echo_flow(schedule="@hourly").schedule("@daily"),
            "duplicate schedule name 'tick'",
        ),
        (
            lambda: echo_flow().schedule("@daily", name="x", timezone="Atlantis"),
            "flow 'tick': schedule 'x': unknown time zone 'Atlantis'",
        ),
        (
            lambda: echo_flow().schedule("@daily", max_catch_up=-1),
            "max_catch_up must be between 1 and 1000",
        ),
    ],
)
def test_declaration_mistakes_fail_at_import(build: Any, message: str) -> None:
    with pytest.raises(FlowDefinitionError, match=message):
        build()
