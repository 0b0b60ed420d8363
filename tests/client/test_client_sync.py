"""Client (sync) against a real database, with a real worker running the flows."""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from pgflow import (
    Client,
    Flow,
    FlowNotFoundError,
    InvalidInputError,
    RunNotFoundError,
    StepOutputUnavailableError,
    WaitTimeoutError,
    job,
)
from pgflow.testing import running_worker


def chain() -> Flow[Any]:
    flow = Flow("greet", timeout=5)

    @flow.step
    def name(run: Any) -> str:
        return str(run["name"]).title()

    @flow.step(name)
    def greeting(run: Any, who: str) -> str:
        return f"Hello, {who}!"

    return flow


def squares() -> Flow[list[int]]:
    flow: Flow[list[int]] = Flow("squares", timeout=5)

    @flow.map()
    def square(n: int) -> int:
        return n * n

    return flow


@job(max_attempts=1)
def boom(payload: Any) -> None:
    raise RuntimeError(f"exploded: {payload}")


@job
def noop(payload: Any) -> Any:
    return payload


@pytest.fixture
def client(pgflow_database_url: str) -> Any:
    with Client(pgflow_database_url) as c:
        for flow in (chain(), squares(), boom, noop):
            c.ensure_flow(flow)
        yield c


def test_start_flow_and_wait(client: Client, pgflow_database_url: str) -> None:
    with running_worker([chain()], pgflow_database_url):
        handle = client.start_flow(chain(), {"name": "ada"})
        run = handle.wait(timeout=30)
    assert run.status == "completed"
    assert run.output == {"greeting": "Hello, Ada!"}
    assert run.error_message is None
    assert run.duration is not None
    assert run.duration >= timedelta(0)


def test_start_flow_sync_and_events(client: Client, pgflow_database_url: str) -> None:
    with running_worker([chain()], pgflow_database_url):
        run = client.start_flow_sync("greet", {"name": "bob"}, timeout=30)
        assert run.output == {"greeting": "Hello, Bob!"}
        handle = client.start_flow("greet", {"name": "cy"})
        events = [(e.event_type, e.step_slug) for e in handle.events(timeout=30)]
    assert events == [
        ("run:started", None),
        ("step:started", "name"),
        ("step:completed", "name"),
        ("step:started", "greeting"),
        ("step:completed", "greeting"),
        ("run:completed", None),
    ]


def test_failed_run_reports_the_error(client: Client, pgflow_database_url: str) -> None:
    with running_worker([boom], pgflow_database_url):
        run = client.enqueue(boom, {"x": 1}).wait(timeout=30)
    assert run.status == "failed"
    assert run.error_message == "RuntimeError: exploded: {'x': 1}"


def test_wait_times_out(client: Client) -> None:
    handle = client.start_flow("greet", {"name": "nobody runs this"})
    began = time.monotonic()
    with pytest.raises(WaitTimeoutError, match=r"is still started after 0\.3s"):
        handle.wait(timeout=0.3)
    assert time.monotonic() - began < 5


def test_start_flows_in_one_round_trip(client: Client, pgflow_database_url: str) -> None:
    handles = client.start_flows(squares(), [[1, 2], [3], []])
    assert len({h.run_id for h in handles}) == 3
    with running_worker([squares()], pgflow_database_url):
        runs = [h.wait(timeout=30) for h in handles]
    assert [r.output for r in runs] == [{"square": [1, 4]}, {"square": [9]}, {"square": []}]


def test_explicit_run_id(client: Client) -> None:
    run_id = uuid.uuid4()
    handle = client.start_flow("greet", {"name": "x"}, run_id=run_id)
    assert handle.run_id == run_id
    with pytest.raises(InvalidInputError, match="exists already"):
        client.start_flow("greet", {"name": "x"}, run_id=run_id)


class ApplicationError(Exception):
    pass


def fail_the_application() -> None:
    raise ApplicationError("the application fails after starting the run")


def test_start_inside_the_callers_transaction(client: Client, pgflow_database_url: str) -> None:
    with psycopg.connect(pgflow_database_url) as conn:
        conn.execute("CREATE TABLE orders (id int)")
        conn.commit()
        with conn.transaction():
            conn.execute("INSERT INTO orders VALUES (1)")
            kept = client.start_flow("greet", {"name": "kept"}, conn=conn)
        with contextlib.suppress(ApplicationError), conn.transaction():
            conn.execute("INSERT INTO orders VALUES (2)")
            dropped = client.start_flow("greet", {"name": "dropped"}, conn=conn)
            fail_the_application()
    client.get_run(kept.run_id)
    with pytest.raises(RunNotFoundError):
        client.get_run(dropped.run_id)
    with psycopg.connect(pgflow_database_url) as conn:
        assert conn.execute("SELECT array_agg(id) FROM orders").fetchone() == ([1],)
        queued = conn.execute("SELECT count(*) FROM pgmq.q_greet").fetchone()
    assert queued == (1,)  # only the committed run's message exists


def test_bad_input_is_refused_before_anything_is_written(client: Client) -> None:
    with pytest.raises(InvalidInputError, match="not JSON-serialisable"):
        client.start_flow("greet", {"when": object()})
    with pytest.raises(InvalidInputError, match="must be an array, got dict"):
        client.start_flow(squares(), {"not": "a list"})
    with pytest.raises(InvalidInputError, match="root map steps but input is not an array"):
        client.start_flow("squares", {"not": "a list"})  # by slug: the SQL core refuses
    with pytest.raises(FlowNotFoundError, match="flow 'nope' does not exist"):
        client.start_flow("nope", {})
    assert client.list_runs().runs == ()


def test_reading_runs_steps_and_tasks(client: Client, pgflow_database_url: str) -> None:
    with running_worker([squares()], pgflow_database_url):
        run = client.start_flow_sync(squares(), [2, 3], timeout=30)
    full = client.get_run_with_states(run.run_id)
    assert full.run == run
    assert [s.step_slug for s in full.steps] == ["square"]
    assert full.step("square").status == "completed"
    assert [t.output for t in full.tasks_of("square")] == [4, 9]
    assert client.get_step_output(run.run_id, "square") == [4, 9]
    assert client.get_flow_input(run.run_id) == [2, 3]
    with pytest.raises(StepOutputUnavailableError, match="has no step 'nope'"):
        client.get_step_output(run.run_id, "nope")
    pending = client.start_flow("greet", {"name": "later"})
    with pytest.raises(StepOutputUnavailableError, match="is started: it has no output yet"):
        client.get_step_output(pending.run_id, "name")
    with pytest.raises(RunNotFoundError):
        client.get_run_with_states(uuid.uuid4())


def test_list_runs_filters_and_pages(client: Client) -> None:
    handles = [client.start_flow("greet", {"name": str(i)}) for i in range(5)]
    client.start_flow(squares(), [1])
    first = client.list_runs(flow="greet", limit=2)
    assert len(first.runs) == 2
    assert first.next_cursor is not None
    second = client.list_runs(flow="greet", limit=2, cursor=first.next_cursor)
    third = client.list_runs(flow="greet", limit=2, cursor=second.next_cursor)
    seen = [r.run_id for page in (first, second, third) for r in page.runs]
    assert sorted(seen, key=str) == sorted((h.run_id for h in handles), key=str)
    assert third.next_cursor is None
    assert len(client.list_runs().runs) == 6
    assert client.list_runs(status="completed").runs == ()
    assert client.list_runs(since=datetime.now(UTC) + timedelta(hours=1)).runs == ()
    assert len(client.list_runs(until=datetime.now(UTC) + timedelta(hours=1)).runs) == 6
    with pytest.raises(InvalidInputError, match="status must be one of"):
        client.list_runs(status="running")
    with pytest.raises(InvalidInputError, match="limit must be between 1 and 1000"):
        client.list_runs(limit=0)
    with pytest.raises(InvalidInputError, match="invalid cursor"):
        client.list_runs(cursor="garbage")


def test_enqueue_in_is_invisible_until_its_time(client: Client, pgflow_database_url: str) -> None:
    handle = client.enqueue_in(noop, {"late": True}, 2)
    with psycopg.connect(pgflow_database_url) as conn:
        visible_in = conn.execute(
            "SELECT extract(epoch FROM vt - clock_timestamp()) FROM pgmq.q_noop"
        ).fetchone()
    assert visible_in is not None
    assert 1.5 < float(visible_in[0]) <= 2.0
    began = time.monotonic()
    with running_worker([noop], pgflow_database_url, poll_interval=0.1):
        run = handle.wait(timeout=30)
    done_after = time.monotonic() - began
    assert run.status == "completed"
    tasks = client.get_run_with_states(run.run_id).tasks
    started_after = (tasks[0].started_at - run.started_at).total_seconds()  # type: ignore[operator]
    assert 2.0 <= started_after <= 3.0
    assert done_after < 5


def test_enqueue_at(client: Client, pgflow_database_url: str) -> None:
    past = client.enqueue_at(noop, 1, datetime.now(UTC) - timedelta(days=1))
    future = client.enqueue_at(noop, 2, datetime.now(UTC) + timedelta(hours=1))
    with psycopg.connect(pgflow_database_url) as conn:
        rows = conn.execute(
            "SELECT t.run_id, q.vt > clock_timestamp() + interval '50 minutes' "
            "FROM pgmq.q_noop AS q JOIN pgflow.step_tasks AS t ON t.message_id = q.msg_id"
        ).fetchall()
    assert dict(rows) == {past.run_id: False, future.run_id: True}
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        client.enqueue_at(noop, 3, datetime.now())
    with pytest.raises(InvalidInputError, match="finite number of seconds >= 0"):
        client.enqueue_in(noop, 3, -1)


def test_prune_returns_counts(client: Client, pgflow_database_url: str) -> None:
    with running_worker([noop], pgflow_database_url):
        old = client.enqueue(noop, "old").wait(timeout=30)
    client.start_flow("greet", {"name": "in progress"})
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE pgflow.runs SET started_at = started_at - interval '10 days', "
            "completed_at = completed_at - interval '10 days' WHERE run_id = %s",
            (old.run_id,),
        )
        conn.execute("UPDATE pgmq.a_noop SET archived_at = archived_at - interval '10 days'")
        conn.execute("UPDATE pgflow.workers SET last_heartbeat_at = now() - interval '10 days'")
    result = client.prune(timedelta(days=7))
    assert (result.runs, result.step_states, result.step_tasks) == (1, 1, 1)
    assert result.workers == 1
    assert result.archived_messages == 1
    assert [r.flow_slug for r in client.list_runs().runs] == ["greet"]
    again = client.prune(timedelta(days=7), flows=["greet"])
    assert again.runs == 0


def test_health_check(client: Client, pgflow_database_url: str) -> None:
    client.start_flow("greet", {"name": "waiting"})
    report = client.health_check()
    assert report.database
    assert report.schema_up_to_date
    assert report.queue_depths["greet"] == 1
    assert report.live_workers["greet"] == 0
    assert not report.healthy
    assert "flow 'greet' has 1 queued message(s) and no live worker" in report.problems
    with running_worker([chain()], pgflow_database_url):
        time.sleep(0.5)
        live = client.health_check()
        assert live.live_workers["greet"] == 1
    unreachable = Client("postgresql://postgres@127.0.0.1:1/x?connect_timeout=2")
    try:
        report = unreachable.health_check()
    finally:
        unreachable.close()
    assert not report.database
    assert not report.healthy


def test_pydantic_flow_input_is_validated_before_starting(client: Client) -> None:
    import pydantic

    class Order(pydantic.BaseModel):
        order_id: int

    flow = Flow("typed_orders", input=Order)

    @flow.step
    def take(run: Order) -> int:
        return run.order_id

    client.ensure_flow(flow)
    with pytest.raises(InvalidInputError, match="input of flow 'typed_orders' is invalid"):
        client.start_flow(flow, {"order_id": "not a number"})
    handle = client.start_flow(flow, Order(order_id=7))
    assert client.get_flow_input(handle.run_id) == {"order_id": 7}
    assert len(client.list_runs(flow="typed_orders").runs) == 1
