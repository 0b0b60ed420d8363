"""The worker runs flows end to end against a real database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pydantic
import pytest

from pgflow import Context, Flow, job
from pgflow.flows import aensure_flow
from pgflow.worker import Worker
from pgflow.worker._runner import RUN_INPUTS_KEPT, FlowRunner

from .conftest import rows, start_run, wait_for_run

FAST = {"poll_interval": 0.2, "heartbeat_interval": 0.3, "summary_interval": 3600}


def chain_flow() -> Flow[Any]:
    flow = Flow("chain", timeout=5, base_delay=1)

    @flow.step
    def first(run: Any) -> Any:
        return run["value"]

    @flow.step(first)
    async def second(run: Any, value: Any) -> Any:
        return value

    @flow.step(second)
    def third(run: Any, value: Any, ctx: Context) -> Any:
        return {"value": value, "attempt": ctx.attempt, "step": ctx.step_slug}

    return flow


@pytest.mark.parametrize("value", [0, False, "", None, [], {"a": [1, None]}, 1.5])
async def test_chain_keeps_json_values_exactly(pgflow_database_url: str, value: Any) -> None:
    async with Worker([chain_flow()], database_url=pgflow_database_url, **FAST):
        run_id = await start_run(pgflow_database_url, "chain", {"value": value})
        run = await wait_for_run(pgflow_database_url, run_id)
    assert run["status"] == "completed"
    assert run["output"] == {"third": {"value": value, "attempt": 1, "step": "third"}}


async def test_map_fan_out_and_fan_in(pgflow_database_url: str) -> None:
    flow: Flow[list[int]] = Flow("squares")

    @flow.map()
    async def square(n: int) -> int:
        await asyncio.sleep(0.01 * (5 - n))  # finish out of order
        return n * n

    @flow.map(square)
    def plus_one(n: int) -> int:
        return n + 1

    @flow.step(plus_one)
    def total(run: list[int], values: list[int]) -> int:
        return sum(values)

    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        run_id = await start_run(pgflow_database_url, "squares", [1, 2, 3, 4])
        run = await wait_for_run(pgflow_database_url, run_id)
    assert run["status"] == "completed"
    assert run["output"] == {"total": 1 + 4 + 9 + 16 + 4}
    outputs = rows(
        pgflow_database_url,
        "SELECT output FROM pgflow.step_tasks WHERE run_id = %s AND step_slug = 'plus_one' "
        "ORDER BY task_index",
        (run_id,),
    )
    assert [r["output"] for r in outputs] == [2, 5, 10, 17]


async def test_every_map_task_sees_the_whole_run_input(pgflow_database_url: str) -> None:
    # The core sends a run's input once per claim (with one of its tasks); the worker hands it
    # to every task of that run, whether they came in one claim or several.
    flow: Flow[list[int]] = Flow("echo_input")

    @flow.map()
    def seen(n: int, ctx: Context) -> Any:
        return [n, ctx.flow_input]

    items = list(range(25))
    async with Worker([flow], database_url=pgflow_database_url, batch_size=4, **FAST):
        run_ids = [await start_run(pgflow_database_url, "echo_input", items) for _ in range(2)]
        runs = [await wait_for_run(pgflow_database_url, run_id) for run_id in run_ids]
    for run in runs:
        assert run["status"] == "completed"
        assert run["output"] == {"seen": [[n, items] for n in items]}


def _input_echo(slug: str) -> Flow[list[Any]]:
    """A map whose every task returns the run input its context holds."""
    flow: Flow[list[Any]] = Flow(slug)

    @flow.map()
    def seen(item: Any, ctx: Context) -> Any:
        return ctx.flow_input

    return flow


def _assert_each_task_saw_its_run_input(
    inputs: list[list[Any]], runs: list[dict[str, Any]]
) -> None:
    for items, run in zip(inputs, runs, strict=True):
        assert run["status"] == "completed"
        assert run["output"] == {"seen": [items] * len(items)}


async def test_run_inputs_parsed_once_stay_each_runs_own(pgflow_database_url: str) -> None:
    # The worker keeps the last few run inputs it parsed (a claim sends them again): more runs
    # than it keeps, interleaved in claims, each task still sees its own run's input.
    flow = _input_echo("own_input")
    inputs: list[list[Any]] = [[n, {"n": n}, None] for n in range(RUN_INPUTS_KEPT + 8)]
    async with Worker([flow], database_url=pgflow_database_url, batch_size=5, **FAST):
        run_ids = [await start_run(pgflow_database_url, "own_input", i) for i in inputs]
        runs = [await wait_for_run(pgflow_database_url, run_id) for run_id in run_ids]
    _assert_each_task_saw_its_run_input(inputs, runs)


async def test_a_run_input_left_out_of_a_claim_is_read_when_not_held(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A claim leaves out the inputs of the runs the worker says it holds; if it no longer
    # holds one when the tasks arrive (another claim pushed it out), it reads it again.
    flow = _input_echo("left_out")
    async with await psycopg.AsyncConnection.connect(pgflow_database_url) as conn:
        await aensure_flow(conn, flow)
        await conn.commit()
    inputs = [[n, {"n": n}] for n in range(3)]
    run_ids = [await start_run(pgflow_database_url, "left_out", i) for i in inputs]
    claim_params = FlowRunner._claim_params

    def claiming_to_hold_every_run(self: FlowRunner, qty: int) -> dict[str, Any]:
        return claim_params(self, qty) | {"known_runs": run_ids}

    monkeypatch.setattr(FlowRunner, "_claim_params", claiming_to_hold_every_run)
    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        runs = [await wait_for_run(pgflow_database_url, run_id) for run_id in run_ids]
    _assert_each_task_saw_its_run_input(inputs, runs)


async def test_a_run_input_that_cannot_be_read_again_fails_the_attempt(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow: Flow[dict[str, int]] = Flow("unreadable_input", base_delay=1, max_attempts=2)

    @flow.step()
    def echo(run: dict[str, int], ctx: Context) -> Any:
        return ctx.flow_input

    async with await psycopg.AsyncConnection.connect(pgflow_database_url) as conn:
        await aensure_flow(conn, flow)
        await conn.commit()
    run_id = await start_run(pgflow_database_url, "unreadable_input", {"n": 7})
    claim_params, read_run_input = FlowRunner._claim_params, FlowRunner._read_run_input
    reads: list[Any] = []

    def claiming_to_hold_it(self: FlowRunner, qty: int) -> dict[str, Any]:
        return claim_params(self, qty) | {"known_runs": [run_id]}

    async def failing_once(self: FlowRunner, run: Any) -> Any:
        reads.append(run)
        if len(reads) == 1:
            raise psycopg.OperationalError("connection lost")
        return await read_run_input(self, run)

    monkeypatch.setattr(FlowRunner, "_claim_params", claiming_to_hold_it)
    monkeypatch.setattr(FlowRunner, "_read_run_input", failing_once)
    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        run = await wait_for_run(pgflow_database_url, run_id, timeout=20)
    assert run["status"] == "completed"
    assert run["output"] == {"echo": {"n": 7}}
    (task,) = rows(
        pgflow_database_url, "SELECT * FROM pgflow.step_tasks WHERE run_id = %s", (run_id,)
    )
    assert task["attempts_count"] == 2
    assert len(reads) == 2


async def test_exceptions_are_retried_then_fail_the_run(pgflow_database_url: str) -> None:
    calls: list[int] = []

    @job(max_attempts=2, base_delay=1)
    def flaky(payload: Any, ctx: Context) -> None:
        calls.append(ctx.attempt)
        raise ValueError(f"boom on attempt {ctx.attempt}")

    async with Worker([flaky], database_url=pgflow_database_url, **FAST):
        run_id = await start_run(pgflow_database_url, "flaky", {})
        run = await wait_for_run(pgflow_database_url, run_id, timeout=20)
    assert run["status"] == "failed"
    assert calls == [1, 2]
    (task,) = rows(
        pgflow_database_url, "SELECT * FROM pgflow.step_tasks WHERE run_id = %s", (run_id,)
    )
    assert task["status"] == "failed"
    assert task["attempts_count"] == 2
    assert task["error_message"] == "ValueError: boom on attempt 2"


async def test_transient_failure_is_retried_to_success(pgflow_database_url: str) -> None:
    @job(max_attempts=3, base_delay=1)
    def once_flaky(payload: Any, ctx: Context) -> str:
        if ctx.attempt == 1:
            raise ConnectionError("try again")
        return "ok"

    async with Worker([once_flaky], database_url=pgflow_database_url, **FAST):
        run_id = await start_run(pgflow_database_url, "once_flaky", {})
        began = time.monotonic()
        run = await wait_for_run(pgflow_database_url, run_id, timeout=20)
    assert run["status"] == "completed"
    assert run["output"] == {"once_flaky": "ok"}
    # The retry waited for its backoff (base_delay * 2**1 = 2 s), not a blind poll.
    assert time.monotonic() - began >= 1.5


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (float("nan"), "OutputError: output is nan, which JSON cannot represent"),
        (b"bytes", "OutputError: output is a bytes, which is not JSON-serialisable"),
        (
            {"when": object()},
            "OutputError: output['when'] is a object, which is not JSON-serialisable",
        ),
        ({1: "x"}, "OutputError: output has a non-string key 1"),
    ],
)
async def test_non_json_output_fails_the_task(
    pgflow_database_url: str, result: Any, message: str
) -> None:
    @job(max_attempts=1)
    def bad_output(payload: Any) -> Any:
        return result

    async with Worker([bad_output], database_url=pgflow_database_url, **FAST):
        run_id = await start_run(pgflow_database_url, "bad_output", {})
        run = await wait_for_run(pgflow_database_url, run_id)
    assert run["status"] == "failed"
    (task,) = rows(
        pgflow_database_url,
        "SELECT error_message FROM pgflow.step_tasks WHERE run_id = %s",
        (run_id,),
    )
    assert task["error_message"] == message


async def test_timeouts_are_enforced(pgflow_database_url: str) -> None:
    flow = Flow("slow", max_attempts=1, timeout=3)

    @flow.step
    async def sleepy_async(run: Any) -> None:
        await asyncio.sleep(30)

    @flow.step
    def sleepy_sync(run: Any) -> None:
        time.sleep(5)

    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        run_id = await start_run(pgflow_database_url, "slow", {})
        run = await wait_for_run(pgflow_database_url, run_id, timeout=20)
    assert run["status"] == "failed"
    errors = {
        r["step_slug"]: r["error_message"]
        for r in rows(
            pgflow_database_url,
            "SELECT step_slug, error_message FROM pgflow.step_tasks "
            "WHERE run_id = %s AND status = 'failed'",
            (run_id,),
        )
    }
    # The run fails on the first timeout; which one comes first is a race.
    assert set(errors) <= {"sleepy_async", "sleepy_sync"}
    assert errors
    for slug, error in errors.items():
        kind = "cancelled" if slug == "sleepy_async" else "abandoned (its thread keeps running)"
        assert (
            error == f"TaskTimeoutError: step {slug!r} exceeded its timeout of 3 s and was {kind}"
        )


@pytest.mark.parametrize("listen", [True, False])
async def test_listen_and_polling_both_work(pgflow_database_url: str, listen: bool) -> None:
    async with Worker(
        [chain_flow()], database_url=pgflow_database_url, listen=listen, **FAST
    ) as worker:
        run_ids = [await start_run(pgflow_database_url, "chain", {"value": i}) for i in range(5)]
        for run_id in run_ids:
            assert (await wait_for_run(pgflow_database_url, run_id))["status"] == "completed"
        await asyncio.sleep(0.1)
        assert worker.listening is listen


async def _chains_one_at_a_time(
    url: str, count: int, when_idle: Callable[[], None] = lambda: None
) -> None:
    """An idle worker polling once a minute, so that only notifications bring runs through
    in time, runs ``count`` chains started one after the other; ``when_idle`` is called once
    it listens and its first read found nothing."""
    async with Worker(
        [chain_flow()], database_url=url, poll_interval=60, summary_interval=3600
    ) as worker:
        for _ in range(200):
            if worker.listening:
                break
            await asyncio.sleep(0.05)
        assert worker.listening
        await asyncio.sleep(0.5)
        when_idle()
        for i in range(count):
            run_id = await start_run(url, "chain", {"value": i})
            assert (await wait_for_run(url, run_id, timeout=20))["status"] == "completed"


async def test_an_idle_worker_is_woken_by_a_notification(pgflow_database_url: str) -> None:
    await _chains_one_at_a_time(pgflow_database_url, 3)


async def test_an_idle_worker_never_claims_from_an_empty_queue(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs one at a time: the loop claims a run's first task when its event comes, the reports
    claim the next hops; no claim comes back empty (a claim that got fewer than it asked for,
    or a report that found the queue empty, is not followed by another claim, and the event of
    a step claimed by a report does not trigger one, even when it comes before the report's
    answer)."""
    claimed: list[int] = []
    claim = FlowRunner._claim

    async def counting(self: FlowRunner, qty: int) -> tuple[list[dict[str, Any]], float | None]:
        rows, idle_for = await claim(self, qty)
        claimed.append(len(rows))
        return rows, idle_for

    monkeypatch.setattr(FlowRunner, "_claim", counting)
    await _chains_one_at_a_time(pgflow_database_url, 5, when_idle=claimed.clear)
    assert claimed == [1] * 5


async def test_a_claim_that_finds_a_delayed_message_sleeps_until_it_is_visible(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim that gets fewer tasks than it asks for also says when the queue's next message
    becomes visible (one round trip, not a second query): a step delayed by 1 s runs about 1 s
    after its run starts, although the worker polls once a minute."""
    flow: Flow[Any] = Flow("delayed")

    @flow.step(start_delay=1)
    async def later(run: Any) -> Any:
        return run

    asked: list[float] = []
    idle_time = FlowRunner._idle_time

    async def counting(self: FlowRunner) -> float:
        asked.append(time.monotonic())
        return await idle_time(self)

    monkeypatch.setattr(FlowRunner, "_idle_time", counting)
    async with Worker(
        [flow], database_url=pgflow_database_url, poll_interval=60, summary_interval=3600
    ) as worker:
        for _ in range(200):
            if worker.listening:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        asked.clear()
        began = time.monotonic()
        run_id = await start_run(pgflow_database_url, "delayed", 7)
        run = await wait_for_run(pgflow_database_url, run_id, timeout=10)
        took = time.monotonic() - began
    assert run["status"] == "completed"
    assert 0.9 < took < 5, took
    # Only the report's claim, which found the queue empty at the end, asked separately.
    assert all(t > began + 0.9 for t in asked), asked


async def test_registration_heartbeat_and_deprecation(pgflow_database_url: str) -> None:
    worker = Worker(
        [chain_flow()], database_url=pgflow_database_url, function_name="test-fn", **FAST
    )
    await worker.start()
    (row,) = rows(pgflow_database_url, "SELECT * FROM pgflow.workers")
    assert row["queue_name"] == "chain"
    assert row["function_name"] == "test-fn"
    first_beat = row["last_heartbeat_at"]
    await asyncio.sleep(0.8)
    (row,) = rows(pgflow_database_url, "SELECT * FROM pgflow.workers")
    assert row["last_heartbeat_at"] > first_beat
    rows(pgflow_database_url, "UPDATE pgflow.workers SET deprecated_at = now() RETURNING 1")
    await asyncio.wait_for(worker.wait(), 10)
    assert worker.exit_reason == "deprecated"


async def test_worker_ensures_its_flows(pgflow_database_url: str) -> None:
    async with Worker([chain_flow()], database_url=pgflow_database_url, **FAST):
        steps = rows(pgflow_database_url, "SELECT step_slug FROM pgflow.steps ORDER BY step_index")
    assert [s["step_slug"] for s in steps] == ["first", "second", "third"]


async def test_runtime_flow_with_handlers_bound_by_slug(pgflow_database_url: str) -> None:
    import psycopg

    from pgflow.dsl import FlowDefinition, bind_handlers
    from pgflow.flows import upsert_flow

    steps = [{"slug": "fetch"}, {"slug": "shout", "depends_on": ["fetch"], "timeout": 5}]
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        upsert_flow(conn, "tenant_7", steps, max_attempts=2)
    definition = FlowDefinition.from_data("tenant_7", steps, {"max_attempts": 2})
    flow = bind_handlers(
        definition,
        {"fetch": lambda run: run["word"], "shout": lambda run, word: word.upper()},
    )
    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        run = await wait_for_run(
            pgflow_database_url, await start_run(pgflow_database_url, "tenant_7", {"word": "hi"})
        )
    assert run["output"] == {"shout": "HI"}


class Total(pydantic.BaseModel):
    amount: float


async def test_pydantic_outputs_are_validated_at_the_boundary(pgflow_database_url: str) -> None:
    flow = Flow("models", max_attempts=1)

    @flow.step
    def good(run: Any) -> Total:
        return {"amount": "2.5"}  # type: ignore[return-value]  # a dict that fits the model

    @flow.step
    def bad(run: Any) -> Total:
        return {"amount": "lots"}  # type: ignore[return-value]

    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        run = await wait_for_run(
            pgflow_database_url, await start_run(pgflow_database_url, "models", {})
        )
    assert run["status"] == "failed"
    tasks = {
        r["step_slug"]: r
        for r in rows(
            pgflow_database_url,
            "SELECT step_slug, status, output, error_message FROM pgflow.step_tasks",
        )
    }
    assert tasks["bad"]["status"] == "failed"
    assert tasks["bad"]["error_message"].startswith("ValidationError: 1 validation error for Total")
    if tasks["good"]["status"] == "completed":  # the run may fail before good is reported
        assert tasks["good"]["output"] == {"amount": 2.5}


async def test_claims_hide_messages_for_the_steps_timeout_when_all_steps_share_it(
    pgflow_database_url: str,
) -> None:
    # One timeout for all steps: the claim's read hides a message for timeout + 2 s at once,
    # as the core would on starting the task. Steps that differ: the configured visibility.
    uniform = chain_flow()
    mixed: Flow[Any] = Flow("mixed_timeouts", timeout=5)

    @mixed.step
    def quick(run: Any) -> int:
        return 1

    @mixed.step(quick, timeout=9)
    def slow(run: Any, value: int) -> int:
        return value + 1

    async with Worker(
        [uniform, mixed], database_url=pgflow_database_url, visibility_timeout=3, **FAST
    ) as worker:
        assert worker.runners["chain"].claim_visibility == 7
        assert worker.runners["mixed_timeouts"].claim_visibility == 3
        runs = [
            await start_run(pgflow_database_url, "chain", {"value": 1}),
            await start_run(pgflow_database_url, "mixed_timeouts", {}),
        ]
        done = [await wait_for_run(pgflow_database_url, run_id) for run_id in runs]
    assert [run["status"] for run in done] == ["completed", "completed"]
    assert done[1]["output"] == {"slow": 2}
