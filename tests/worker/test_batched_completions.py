"""Batched completions: pgflow.complete_tasks_and_claim, and the worker's completion batcher."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgflow import Flow
from pgflow.testing import install_realtime_stub
from pgflow.worker import Worker
from pgflow.worker._runner import FlowRunner
from tests.sql.conftest import Conn, Core, Listener, jb, q

from .conftest import rows, start_run, wait_for_run

FAST = {"poll_interval": 0.2, "summary_interval": 3600}

# -- the SQL function -----------------------------------------------------------------------------


@pytest.fixture
def core(pgflow_conn: Conn) -> Core:
    worker_id = uuid.uuid4()
    pgflow_conn.execute(
        "INSERT INTO pgflow.workers (worker_id, queue_name, function_name)"
        " VALUES (%s, 'any', 'tests')",
        (worker_id,),
    )
    return Core(pgflow_conn, worker_id)


def _completion(task: dict[str, Any], output: Any) -> dict[str, Any]:
    return {
        "run_id": str(task["run_id"]),
        "step_slug": task["step_slug"],
        "task_index": task["task_index"],
        "output": output,
    }


def _complete_batch(
    core: Core, completions: list[dict[str, Any]], qty: int = 10, flow: str | None = None
) -> list[dict[str, Any]]:
    return q(
        core.conn,
        "SELECT * FROM pgflow.complete_tasks_and_claim(%s::jsonb, %s, 2, %s, %s)",
        jb(completions),
        qty,
        core.worker_id,
        flow,
    )


def _claim(core: Core, flow: str, qty: int = 100) -> list[dict[str, Any]]:
    return q(
        core.conn, "SELECT * FROM pgflow.claim_tasks(%s, %s, 2, %s)", flow, qty, core.worker_id
    )


def test_one_call_completes_tasks_of_several_runs_and_steps_and_claims_the_next(
    core: Core,
) -> None:
    core.flow("fan", [("items", []), ("double", ["items"], {"step_type": "map"}), ("tail", [])])
    runs = [core.start_flow("fan", {"n": n})["run_id"] for n in range(3)]
    first = _claim(core, "fan")
    assert sorted(t["step_slug"] for t in first) == ["items"] * 3 + ["tail"] * 3

    claimed = _complete_batch(
        core,
        [
            _completion(t, [t["flow_input"]["n"], 0] if t["step_slug"] == "items" else None)
            for t in first
        ],
        flow="fan",
    )

    # Each run's map fanned out over its own items, claimed in the same statement.
    assert sorted((str(t["run_id"]), t["task_index"], t["input"]) for t in claimed) == sorted(
        (str(run), index, value) for n, run in enumerate(runs) for index, value in enumerate([n, 0])
    )
    assert {t["step_slug"] for t in claimed} == {"double"}
    for n, run in enumerate(runs):
        assert core.task(run, "items")["output"] == [n, 0]
        assert core.task(run, "tail")["output"] is None  # JSON null, as complete_task keeps it
        assert core.states(run)["items"]["status"] == "completed"

    assert (
        _complete_batch(core, [_completion(t, t["input"] * 2) for t in claimed], flow="fan") == []
    )
    for n, run in enumerate(runs):
        finished = core.run(run)
        assert finished["status"] == "completed"
        assert finished["output"] == {"double": [2 * n, 0], "tail": None}


def test_completions_apply_in_key_order_whatever_the_order_given(core: Core) -> None:
    install_realtime_stub(core.conn)
    core.flow("order", [("a", [])])
    runs = [core.start_flow("order", {})["run_id"] for _ in range(6)]
    tasks = _claim(core, "order")
    backwards = sorted(tasks, key=lambda t: t["run_id"], reverse=True)

    _complete_batch(core, [_completion(t, str(t["run_id"])) for t in backwards])

    completed_runs = [
        e["payload"]["run_id"]
        for e in q(core.conn, "SELECT payload FROM realtime.messages ORDER BY ctid")
        if e["payload"]["event_type"] == "run:completed"
    ]
    assert completed_runs == sorted(str(run) for run in runs)  # uuid order = text order
    for run in runs:
        assert core.run(run)["output"] == {"a": str(run)}


def test_late_and_repeated_completions_in_a_batch_change_nothing(core: Core) -> None:
    core.flow("late", [("a", []), ("b", [])])
    done = core.start_flow("late", {})["run_id"]
    busy = core.start_flow("late", {})["run_id"]
    for task in _claim(core, "late"):
        if task["run_id"] == done:
            core.complete(done, task["step_slug"], 0, "first")
    assert core.run(done)["status"] == "completed"
    (queued,) = q(core.conn, "SELECT * FROM pgflow.start_flow('late', '{}'::jsonb)")

    _complete_batch(
        core,
        [
            {"run_id": str(done), "step_slug": "a", "task_index": 0, "output": "late"},
            {"run_id": str(busy), "step_slug": "a", "task_index": 0, "output": "kept"},
            {"run_id": str(busy), "step_slug": "a", "task_index": 0, "output": "repeated"},
            # Never started: a premature completion leaves it queued.
            {"run_id": str(queued["run_id"]), "step_slug": "b", "task_index": 0, "output": 1},
        ],
        qty=0,
    )

    assert core.run(done)["output"] == {"a": "first", "b": "first"}
    assert core.task(busy, "a")["output"] == "kept"  # the first in the array wins
    assert core.states(busy)["a"]["remaining_tasks"] == 0
    assert core.states(busy)["a"]["status"] == "completed"
    assert core.run(busy)["remaining_steps"] == 1
    assert core.task(queued["run_id"], "b")["status"] == "queued"


def test_claims_follow_the_quantity_and_the_flow(core: Core) -> None:
    core.flow("claims", [("a", [])])
    for _ in range(5):
        core.start_flow("claims", {})
    assert _complete_batch(core, [], qty=0, flow="claims") == []
    assert _complete_batch(core, [], qty=3, flow=None) == []
    first = _complete_batch(core, [], qty=3, flow="claims")
    assert len(first) == 3
    assert all(t["attempt"] == 1 and t["flow_input"] == {} for t in first)
    assert len(_complete_batch(core, [], qty=10, flow="claims")) == 2


def _messages(core: Core, flow: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {
        (m["message"]["run_id"], m["message"]["step_slug"], m["message"]["task_index"]): m
        for m in core.queue(flow)
    }


def test_released_tasks_are_started_for_the_freed_slots_as_they_are_inserted(
    core: Core,
) -> None:
    core.flow("pre", [("a", []), ("b", ["a"], {"timeout": 7})])
    working = [core.start_flow("pre", {"n": n})["run_id"] for n in range(3)]
    first = _claim(core, "pre")
    backlog = [core.start_flow("pre", {"n": n})["run_id"] for n in range(3, 5)]

    claimed = _complete_batch(core, [_completion(t, t["flow_input"]["n"]) for t in first], 4, "pre")

    # The three b tasks the batch released come first, then one a of the backlog, oldest first.
    assert [(t["run_id"], t["step_slug"]) for t in claimed] == [
        *((run, "b") for run in sorted(working)),
        (backlog[0], "a"),
    ]
    messages = _messages(core, "pre")
    for n, run in enumerate(working):
        (task,) = (t for t in claimed if t["run_id"] == run)
        assert task["input"] == {"run": {"n": n}, "a": n}
        assert task["flow_input"] == {"n": n}
        assert task["attempt"] == 1
        row = core.task(run, "b")
        assert row["status"] == "started"
        assert row["attempts_count"] == 1
        assert row["last_worker_id"] == core.worker_id
        assert row["started_at"] == row["queued_at"]
        assert task["msg_id"] == row["message_id"]
        # Hidden as start_tasks hides a started task's message: the step's timeout + 2 s.
        message = messages[(str(run), "b", 0)]
        assert message["read_ct"] == 0
        assert 8 < message["vt_in"] <= 9
        assert core.states(run)["b"]["status"] == "started"
    assert messages[(str(backlog[0]), "a", 0)]["read_ct"] == 1
    assert core.task(backlog[1], "a")["status"] == "queued"

    # Completing them finishes the runs as if they had been read and started.
    assert _complete_batch(core, [_completion(t, "done") for t in claimed[:3]], 0, "pre") == []
    for run in working:
        assert core.run(run)["status"] == "completed"
        assert core.run(run)["output"] == {"b": "done"}


def test_only_what_the_slots_take_is_started_the_rest_is_queued(core: Core) -> None:
    core.flow(
        "slots",
        [("a", []), ("fan", ["a"], {"step_type": "map"}), ("later", ["a"], {"start_delay": 30})],
    )
    core.flow("other", [("x", [])])
    run = core.start_flow("slots", {})["run_id"]
    other = core.start_flow("other", {})["run_id"]
    tasks = _claim(core, "slots") + _claim(core, "other")

    claimed = _complete_batch(
        core,
        [_completion(t, [1, 2, 3] if t["step_slug"] == "a" else "x") for t in tasks],
        2,
        "slots",
    )

    # Two slots: map tasks 0 and 1, started at once; task 2 queued and visible; the delayed
    # step keeps its start delay.
    assert [(t["step_slug"], t["task_index"], t["input"]) for t in claimed] == [
        ("fan", 0, 1),
        ("fan", 1, 2),
    ]
    assert [t["status"] for t in core.tasks(run, "fan")] == ["started", "started", "queued"]
    assert core.task(run, "later")["status"] == "queued"
    messages = _messages(core, "slots")
    assert messages[(str(run), "fan", 2)]["vt_in"] <= 0
    assert messages[(str(run), "fan", 2)]["read_ct"] == 0
    assert 29 < messages[(str(run), "later", 0)]["vt_in"] <= 30
    assert core.run(other)["status"] == "completed"

    # No worker to start them for, or no slot: everything is queued, as complete_task does.
    for qty, flow in ((0, "slots"), (3, None)):
        again = core.start_flow("slots", {})["run_id"]
        (first,) = (t for t in _claim(core, "slots") if t["run_id"] == again)
        spare = core.start_flow("other", {})["run_id"]
        (x,) = (t for t in _claim(core, "other") if t["run_id"] == spare)
        assert _complete_batch(core, [_completion(first, [7]), _completion(x, 1)], qty, flow) == []
        assert [t["status"] for t in core.tasks(again, "fan")] == ["queued"]


@pytest.mark.parametrize("qty", [3, 0])
def test_workers_are_woken_only_for_steps_with_tasks_left_to_claim(
    core: Core, pgflow_database_url: str, qty: int
) -> None:
    # A step whose tasks a batch started for its worker has nothing for the others: its
    # step:started goes to pgflow_events (clients, listeners) but not to the workers' channel.
    core.flow("quiet", [("a", []), ("b", ["a"]), ("fan", ["a"], {"step_type": "map"})])
    low, high = sorted(core.start_flow("quiet", {})["run_id"] for _ in range(2))
    firsts = _claim(core, "quiet")
    everything = Listener(pgflow_database_url)
    for_workers = Listener(pgflow_database_url, "pgflow_worker_events")
    try:
        _complete_batch(core, [_completion(t, [1, 2, 3]) for t in firsts], qty, "quiet")
        started = [
            (n["run_id"], n["step_slug"])
            for n in everything.drain()
            if n["event_type"] == "step:started"
        ]
        woken = [(n["run_id"], n["step_slug"]) for n in for_workers.drain()]
    finally:
        everything.close()
        for_workers.close()
    steps = [(str(run), step) for run in (low, high) for step in ("b", "fan")]
    assert started == steps
    if qty:
        # Three slots: the first run's b and two of its fan's tasks; the rest is queued.
        assert [t["status"] for t in core.tasks(low, "b") + core.tasks(low, "fan")] == [
            "started",
            "started",
            "started",
            "queued",
        ]
        assert woken == steps[1:]
    else:
        assert woken == steps


def test_a_task_of_a_cancelled_run_is_left_alone(core: Core) -> None:
    core.flow("cancel", [("a", [])])
    kept, cancelled = (core.start_flow("cancel", {})["run_id"] for _ in range(2))
    tasks = _claim(core, "cancel")
    q(core.conn, "SELECT * FROM pgflow.cancel_run(%s, 'test')", cancelled)

    _complete_batch(core, [_completion(t, "done") for t in tasks], qty=0)

    assert core.run(kept)["status"] == "completed"
    assert core.run(cancelled)["status"] == "cancelled"
    assert core.task(cancelled, "a")["status"] == "cancelled"
    assert core.task(cancelled, "a")["output"] is None


@pytest.mark.parametrize(
    ("completions", "message"),
    [
        ({"run_id": "x"}, "p_completions must be a JSON array of completions, got object"),
        ([1], "completion 1 of p_completions is not an object with run_id"),
        (["ok", {"step_slug": "a"}], "completion 2 of p_completions is not an object"),
        (["ok", {"run_id": "", "step_slug": "a", "task_index": 0}], "completion 2 of"),
        (["ok", {"run_id": "zz", "step_slug": "a", "task_index": 0, "output": 1}], "uuid"),
    ],
)
def test_bad_input_names_the_problem_and_changes_nothing(
    core: Core, completions: Any, message: str
) -> None:
    core.flow("bad", [("a", [])])
    run = core.start_flow("bad", {})["run_id"]
    (task,) = _claim(core, "bad")
    valid = _completion(task, "ok")
    if isinstance(completions, list):
        completions = [valid if c == "ok" else c for c in completions]
    with pytest.raises(psycopg.Error, match=message):
        _complete_batch(core, completions, flow="bad")
    assert core.task(run, "a")["status"] == "started"


# -- the worker -----------------------------------------------------------------------------------


class Gate:
    """Holds handlers until ``count`` are waiting, so that they finish together (and their
    outcomes go in one batch) once the test opens it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.arrived = 0
        self.all_arrived = asyncio.Event()
        self.opened = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.count:
            self.all_arrived.set()
        await self.opened.wait()

    async def open_when_all_arrived(self, timeout: float = 20) -> None:
        await asyncio.wait_for(self.all_arrived.wait(), timeout)
        self.opened.set()


def chain_flow() -> Flow[Any]:
    flow = Flow("batched", timeout=5)

    @flow.step
    async def first(run: Any) -> Any:
        return run["value"]

    @flow.step(first)
    async def second(run: Any, value: Any) -> Any:
        return value

    @flow.step(second)
    def third(run: Any, value: Any) -> Any:
        return {"value": value}

    return flow


def _shared_commits(url: str) -> int:
    """Transactions that completed more than one task: such tasks share the xmin of their
    completing update (completed_at, now(), can also coincide between two transactions that
    began in the same microsecond on two connections; seen in CI)."""
    (row,) = rows(
        url,
        "SELECT count(*) AS shared FROM (SELECT xmin::text FROM pgflow.step_tasks "
        "WHERE status = 'completed' GROUP BY 1 HAVING count(*) > 1) AS s",
    )
    return int(row["shared"])


@pytest.mark.parametrize("batch_completions", [True, False])
async def test_many_runs_complete_with_exact_outputs(
    pgflow_database_url: str, batch_completions: bool
) -> None:
    values: list[Any] = [0, False, "", None, [], {"a": [1, None]}, 1.5, "x"]
    async with Worker(
        [chain_flow()],
        database_url=pgflow_database_url,
        batch_completions=batch_completions,
        **FAST,
    ) as worker:
        assert all(r.batch_completions is batch_completions for r in worker.runners.values())
        # All at once (one transaction): the worker has a backlog, so its handlers finish
        # together and batching is certain to happen, however fast each report is.
        async with await psycopg.AsyncConnection.connect(
            pgflow_database_url, autocommit=True
        ) as conn:
            cur = await conn.execute(
                "SELECT s.run_id, v.position FROM unnest(%s::jsonb[]) WITH ORDINALITY"
                " AS v(payload, position), LATERAL pgflow.start_flow('batched', v.payload) AS s"
                " ORDER BY v.position",
                ([Jsonb({"value": value}) for value in values * 5],),
            )
            started = [(row[0], (values * 5)[row[1] - 1]) for row in await cur.fetchall()]
        finished = [(await wait_for_run(pgflow_database_url, run), value) for run, value in started]
    for run, value in finished:
        assert run["status"] == "completed"
        assert run["output"] == {"third": {"value": value}}
    assert worker.stats.completed == 3 * len(started)
    if batch_completions:
        assert _shared_commits(pgflow_database_url) > 0
    else:
        assert _shared_commits(pgflow_database_url) == 0


async def test_a_busy_worker_reports_a_full_batch_and_claims_for_every_slot_it_frees(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of one-step runs, no-op handlers, 10 slots: each report completes the 10 tasks
    the last one claimed and claims 10 more. A slot is free once its task's report has landed,
    not a turn of the event loop later when the task itself ends: counted then, a report sent
    meanwhile claimed for fewer slots, and the batches shrank to half (seen)."""
    flow: Flow[Any] = Flow("backlog")

    @flow.step
    async def only(run: Any) -> Any:
        return run

    reports: list[tuple[int, int]] = []  # (completions, tasks claimed)
    report_batch = FlowRunner._report_batch
    take_claimed = FlowRunner._take_claimed

    async def recording_report(self: FlowRunner, batch: list[Any]) -> None:
        reports.append((len(batch), -1))
        await report_batch(self, batch)

    def recording_take(self: FlowRunner, claimed: list[dict[str, Any]], qty: int) -> None:
        if reports and reports[-1][1] == -1:
            reports[-1] = (reports[-1][0], len(claimed))
        take_claimed(self, claimed, qty)

    monkeypatch.setattr(FlowRunner, "_report_batch", recording_report)
    monkeypatch.setattr(FlowRunner, "_take_claimed", recording_take)
    async with Worker(
        [flow], database_url=pgflow_database_url, max_concurrent=10, batch_size=10, **FAST
    ) as worker:
        await worker.stop()  # registered, flow created; the runs are started below
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pgflow.start_flow('backlog', to_jsonb(i)) FROM generate_series(1, 100) AS i"
        )
    reports.clear()
    async with Worker(
        [flow], database_url=pgflow_database_url, max_concurrent=10, batch_size=10, **FAST
    ):
        for _ in range(400):
            (left,) = rows(
                pgflow_database_url,
                "SELECT count(*) AS n FROM pgflow.runs WHERE status <> 'completed'",
            )
            if left["n"] == 0:
                break
            await asyncio.sleep(0.05)
    assert left["n"] == 0
    assert sum(done for done, _ in reports) == 100
    # The loop claims the first 10; then every report completes 10 and claims 10, until the
    # queue runs out.
    assert reports == [(10, 10)] * 9 + [(10, 0)], reports


async def test_a_cancelled_run_in_a_batch_does_not_disturb_the_others(
    pgflow_database_url: str,
) -> None:
    gate = Gate(5)
    flow = Flow("gated", timeout=10)

    @flow.step
    async def only(run: Any) -> Any:
        await gate.wait()
        return run["n"]

    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        runs = [await start_run(pgflow_database_url, "gated", {"n": n}) for n in range(5)]
        await asyncio.wait_for(gate.all_arrived.wait(), 20)
        async with await psycopg.AsyncConnection.connect(
            pgflow_database_url, autocommit=True
        ) as conn:
            await conn.execute("SELECT pgflow.cancel_run(%s)", (runs[2],))
        await gate.open_when_all_arrived()
        finished = [await wait_for_run(pgflow_database_url, run) for run in runs]
    assert [r["status"] for r in finished] == ["completed"] * 2 + ["cancelled"] + ["completed"] * 2
    assert [r["output"] for r in finished] == [{"only": n} for n in (0, 1)] + [None] + [
        {"only": n} for n in (3, 4)
    ]
    tasks = rows(
        pgflow_database_url,
        "SELECT run_id, status, completed_at FROM pgflow.step_tasks ORDER BY completed_at",
    )
    assert {t["run_id"]: t["status"] for t in tasks}[runs[2]] == "cancelled"
    # The four completions were reported together, with the cancelled one.
    assert len({t["completed_at"] for t in tasks if t["status"] == "completed"}) == 1


#: Makes the database refuse one output (a data error inside complete_task), as a constraint
#: or a size limit would.
REFUSE_POISON = """
CREATE FUNCTION public.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.output = '"poison"'::jsonb THEN
        RAISE EXCEPTION 'poisoned output' USING ERRCODE = 'data_exception';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER refuse_poison BEFORE UPDATE ON pgflow.step_tasks
    FOR EACH ROW EXECUTE FUNCTION public.refuse_poison();
"""


async def test_a_refused_output_fails_its_task_only(
    pgflow_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate(4)
    flow = Flow("refused", timeout=10, max_attempts=1)

    @flow.step
    async def only(run: Any) -> Any:
        await gate.wait()
        return "poison" if run["n"] == 1 else run["n"]

    async with await psycopg.AsyncConnection.connect(pgflow_database_url, autocommit=True) as conn:
        await conn.execute(REFUSE_POISON)
    caplog.set_level(logging.DEBUG, logger="pgflow.worker")
    async with Worker([flow], database_url=pgflow_database_url, **FAST):
        runs = [await start_run(pgflow_database_url, "refused", {"n": n}) for n in range(4)]
        await gate.open_when_all_arrived()
        finished = [await wait_for_run(pgflow_database_url, run) for run in runs]
    assert [r["status"] for r in finished] == ["completed", "failed", "completed", "completed"]
    assert [r["output"] for r in finished if r["status"] == "completed"] == [
        {"only": 0},
        {"only": 2},
        {"only": 3},
    ]
    (task,) = rows(
        pgflow_database_url,
        "SELECT error_message FROM pgflow.step_tasks WHERE run_id = %s",
        (runs[1],),
    )
    assert task["error_message"] == (
        "WorkerError: complete_task refused the output: poisoned output"
    )
    assert "batched completion of 4 task(s) failed" in caplog.text


async def _terminate_when_waiting(url: str, timeout: float = 20) -> int:
    """Terminate the backend of a complete_tasks_and_claim call waiting for a lock."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        for _ in range(int(timeout / 0.02)):
            cur = await conn.execute(
                "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND query LIKE '%%complete_tasks_and_claim%%'"
            )
            killed = [r for r in await cur.fetchall() if r["done"]]
            if killed:
                return len(killed)
            await asyncio.sleep(0.02)
    raise AssertionError("no batched completion waited for the lock")


async def test_connection_lost_during_a_flush_loses_and_repeats_nothing(
    pgflow_database_url: str,
) -> None:
    count = 8
    gate = Gate(count)
    calls: Counter[tuple[int, str]] = Counter()
    flow = Flow("lossy", timeout=10)

    @flow.step
    async def first(run: Any) -> Any:
        calls[(run["n"], "first")] += 1
        await gate.wait()
        return run["n"]

    @flow.step(first)
    async def second(run: Any, value: int) -> Any:
        calls[(run["n"], "second")] += 1
        return [value, False, "", None]

    async with Worker([flow], database_url=pgflow_database_url, **FAST) as worker:
        runs = [await start_run(pgflow_database_url, "lossy", {"n": n}) for n in range(count)]
        await asyncio.wait_for(gate.all_arrived.wait(), 20)
        # The batch of all first steps will wait for the lock on the first run's row; its
        # backend is killed while it waits, then the lock is released.
        async with await psycopg.AsyncConnection.connect(pgflow_database_url) as blocker:
            await blocker.execute(
                "SELECT 1 FROM pgflow.runs WHERE run_id = %s FOR UPDATE", (min(runs),)
            )
            gate.opened.set()
            assert await _terminate_when_waiting(pgflow_database_url) == 1
            await blocker.commit()
        finished = [await wait_for_run(pgflow_database_url, run) for run in runs]
    assert [r["output"] for r in finished] == [
        {"second": [n, False, "", None]} for n in range(count)
    ]
    assert calls == Counter({(n, step): 1 for n in range(count) for step in ("first", "second")})
    tasks = rows(pgflow_database_url, "SELECT status, attempts_count FROM pgflow.step_tasks")
    assert tasks == [{"status": "completed", "attempts_count": 1}] * (2 * count)
    assert worker.stats.completed == 2 * count
