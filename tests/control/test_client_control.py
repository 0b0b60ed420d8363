"""Client and AsyncClient run control: typed results and errors, events, caller transactions."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from pgflow.client import AsyncClient, Client
from pgflow.errors import RunNotFoundError, RunStateError


def _two_step_flow(client: Client) -> None:
    client.upsert_flow("ctl", [{"slug": "a"}, {"slug": "b", "depends_on": ["a"]}], max_attempts=1)


def test_cancel_retry_resume_return_typed_runs(pgflow_database_url: str) -> None:
    with Client(pgflow_database_url) as client:
        _two_step_flow(client)
        run = client.start_flow("ctl", {"k": 1}).started

        cancelled = client.cancel_run(run.run_id, "no longer needed")
        assert (cancelled.run_id, cancelled.status) == (run.run_id, "cancelled")
        assert cancelled.cancel_reason == "no longer needed"
        assert cancelled.cancelled_at is not None
        assert cancelled.is_terminal
        assert cancelled.duration == cancelled.cancelled_at - cancelled.started_at
        assert client.get_run(run.run_id) == cancelled
        (listed,) = client.list_runs(status="cancelled").runs
        assert listed == cancelled
        as_json = json.loads(json.dumps(cancelled.as_dict()))
        assert as_json["cancel_reason"] == "no longer needed"
        assert as_json["retry_of"] is None

        retried = client.retry_run(run.run_id)
        assert (retried.status, retried.retry_of, retried.input) == (
            "started",
            run.run_id,
            {"k": 1},
        )
        assert json.loads(json.dumps(retried.as_dict()))["retry_of"] == str(run.run_id)

        resumed = client.resume_run(run.run_id)
        assert (resumed.run_id, resumed.status, resumed.resumed_count) == (run.run_id, "started", 1)
        assert (resumed.cancelled_at, resumed.cancel_reason) == (None, None)
        assert resumed.resumed_at is not None
        assert client.get_run(run.run_id) == resumed


def test_events_of_a_cancelled_run_end_with_run_cancelled(pgflow_database_url: str) -> None:
    with Client(pgflow_database_url) as client:
        _two_step_flow(client)
        run = client.start_flow("ctl", {}).started
        client.cancel_run(run.run_id)
        names = [(e.event_type, e.step_slug) for e in client.events(run.run_id, timeout=5)]
    assert names == [
        ("run:started", None),
        ("step:started", "a"),
        ("step:cancelled", "a"),
        ("step:cancelled", "b"),
        ("run:cancelled", None),
    ]


def test_refusals_are_typed_and_change_nothing(pgflow_database_url: str) -> None:
    with Client(pgflow_database_url) as client:
        _two_step_flow(client)
        run = client.start_flow("ctl", {}).started
        missing = uuid.uuid4()
        for call in (client.cancel_run, client.retry_run, client.resume_run):
            with pytest.raises(RunNotFoundError, match=f"^run {missing} does not exist$"):
                call(missing)
        with pytest.raises(RunStateError, match="is started: only a failed or cancelled run"):
            client.retry_run(run.run_id)
        with pytest.raises(RunStateError, match="is started: only a failed or cancelled run"):
            client.resume_run(run.run_id)
        client.cancel_run(run.run_id)
        with pytest.raises(RunStateError, match="already cancelled: only a started run"):
            client.cancel_run(run.run_id, "twice")
        assert client.get_run(run.run_id).cancel_reason is None
        assert len(client.list_runs().runs) == 1


def test_control_inside_the_callers_transaction(pgflow_database_url: str) -> None:
    with Client(pgflow_database_url) as client:
        _two_step_flow(client)
        run = client.start_flow("ctl", {}).started
        with psycopg.connect(pgflow_database_url) as conn:
            with conn.transaction(force_rollback=True):
                assert client.cancel_run(run.run_id, conn=conn).status == "cancelled"
            assert client.get_run(run.run_id).status == "started"


async def test_async_client_has_the_same_control(pgflow_database_url: str) -> None:
    async with AsyncClient(pgflow_database_url) as client:
        await client.upsert_flow("actl", [{"slug": "a"}])
        handle = await client.start_flow("actl", [])
        cancelled = await client.cancel_run(handle.run_id, "stop")
        assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "stop")
        assert (await client.wait(handle.run_id, timeout=5)).status == "cancelled"
        retried = await client.retry_run(handle.run_id)
        assert retried.retry_of == handle.run_id
        resumed = await client.resume_run(handle.run_id)
        assert (resumed.status, resumed.resumed_count) == ("started", 1)
        with pytest.raises(RunStateError):
            await client.resume_run(handle.run_id)
        with pytest.raises(RunNotFoundError):
            await client.cancel_run(uuid.uuid4())
