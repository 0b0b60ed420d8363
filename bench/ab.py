"""A/B of two source trees on a bench.core workload, alternately, one server.

``python -m bench ab --base REV [--driver worker|core|start|latency] [--rounds 6] [--runs 8000]
[--workload chain|fanin|single] [--workers 2] [--database-url URL]``

A change to the engine is judged by this, not by figures of two invocations: this machine's
throughput drifts by tens of percent within minutes, so only rounds run side by side compare.

* ``A`` is the git revision ``--base`` (checked out in a temporary worktree), ``B`` the working
  tree. Each gets a database of its own, installed by its own ``pgflow`` (SQL core and all),
  and its own ``pgflow worker`` processes (running its ``src``);
* the rounds alternate (A B, B A, A B…); each is the suite's measurement of our worker
  (``bench.core.prepare_flow`` then ``bench.suite.measure_worker``: tasks/s over the busy
  window, every run and task checked done), plus the CPU time the worker processes and the
  PostgreSQL server processes spent per task (from ``/proc``, the server on this host only);
* ``--driver core`` judges the SQL cores alone instead: each round is ``bench.core``'s fixed
  loop (read, ``start_tasks``, one ``complete_task`` per task, one commit per call, by
  ``--workers`` processes), the same measurement ``python -m bench core`` takes;
* ``--driver latency`` judges the idle path: ``--runs`` chains run one after the other by one
  worker (median start -> completed by the database's clock; lower is better);
* ``--driver start`` judges starting runs: ``--runs`` ``start_flow`` calls of the workload's
  flow in one session, one commit each, as a client enqueues them (runs started per second,
  PostgreSQL CPU per run);
* prints every round, the medians and the per-round ratios B/A.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench import core, suite
from bench import worker as worker_bench

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Round:
    side: str
    #: Tasks per second, or runs started per second (--driver start).
    rate: float
    worker_cpu_us: float
    server_cpu_us: float


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    """Process id -> (command name, user + system clock ticks) of every process of this host."""
    out: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        out[int(entry)] = (name, int(fields[11]) + int(fields[12]))
    return out


def _cpu_seconds(
    before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], pids: set[int] | None
) -> float:
    """CPU seconds spent between the two samples by ``pids`` (None: the PostgreSQL server's
    processes). A process that ended in between is not counted."""
    ticks = 0
    for pid, (name, total) in after.items():
        chosen = pid in pids if pids is not None else name.startswith("postgres")
        if chosen:
            ticks += total - before.get(pid, (name, 0))[1]
    return ticks / os.sysconf("SC_CLK_TCK")


def setup(admin_url: str, side: str, src: Path, workload: core.Workload) -> core.Target:
    """A database installed by the ``pgflow`` of ``src``, with the workload's flow."""
    dbname = f"pgflow_bench_ab_{side.lower()}_{uuid.uuid4().hex[:8]}"
    url = core._create_database(admin_url, dbname)
    # The tree's own installer, in a process of its own: its SQL core, not this one's.
    installed = subprocess.run(
        [sys.executable, "-c", "import sys; from pgflow import install; install(sys.argv[1])", url],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        core._drop_database(admin_url, dbname)
        raise SystemExit(f"{side}: pgflow install failed:\n{installed.stderr.strip()}")
    target = core.Target(side, f"pgflow of {src}", dbname, url)
    with target.connect() as conn:
        core._create_flows(conn, [workload])
        for slug in (workload.flow_slug, core.MAP_FLOW):
            target.tables[slug] = core._queue_tables(conn, slug)
    return target


def measure_start(target: core.Target, workload: core.Workload, runs: int) -> Round:
    """``runs`` start_flow calls of the workload's flow, one session, one commit each."""
    with target.connect() as conn:
        core._reset(conn, target, pgflow_state=True)
        core._settle(conn)
        before = _cpu_ticks()
        started = time.perf_counter()
        for number in range(runs):
            conn.execute(
                "SELECT 1 FROM pgflow.start_flow(flow_slug => %s::text, input => %s::jsonb)",
                (workload.flow_slug, Jsonb({"n": number})),
            )
        elapsed = time.perf_counter() - started
        after = _cpu_ticks()  # before the session's server process ends
        count = conn.execute(
            "SELECT count(*) FROM pgflow.runs WHERE flow_slug = %s", (workload.flow_slug,)
        ).fetchone()
    if count != (runs,):
        raise SystemExit(f"{target.name}: {count} runs started, not {runs}")
    return Round(
        target.name, runs / elapsed, float("nan"), _cpu_seconds(before, after, None) / runs * 1e6
    )


def measure_latency(target: core.Target, src: Path, module_dir: Path, runs: int) -> Round:
    """``runs`` chains one after the other through one idle worker: median start -> completed,
    by the database's clock."""
    with target.connect() as conn:
        core._reset(conn, target, pgflow_state=True)
        core._settle(conn)
    values = asyncio.run(worker_bench._latency(target.url, module_dir, runs, source=src))
    return Round(target.name, statistics.median(values["database"]), float("nan"), float("nan"))


def measure_core_loop(
    config: core.Config, target: core.Target, workload: core.Workload, runs: int, round_no: int
) -> Round:
    """bench.core's fixed loop on ``runs`` runs: tasks/s and the server's CPU per task."""
    core.prepare_flow(target, workload, runs)
    with target.connect() as conn:  # measure_flow's own checkpoint then finds nothing
        core._checkpoint(conn)
    before = _cpu_ticks()
    # The loop's connections, and their server processes, end with it: their CPU time is
    # what was last seen of them, sampled while they run.
    seen = dict(before)
    done_event = threading.Event()

    def watch() -> None:
        while not done_event.wait(0.05):
            seen.update(_cpu_ticks())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        loop = core.measure_flow(config, target, workload, runs, round_no, prepared=True)
    finally:
        done_event.set()
        watcher.join()
    seen.update(_cpu_ticks())
    if loop.problems:
        raise SystemExit(f"{target.name}, round {round_no}: {'; '.join(loop.problems)}")
    # The loop's own processes are bench.core's, not workers: only the server's share.
    return Round(
        target.name,
        loop.tasks_per_second,
        float("nan"),
        _cpu_seconds(before, seen, None) / loop.completed_tasks * 1e6,
    )


def measure_worker(
    config: suite.SuiteConfig,
    target: core.Target,
    src: Path,
    module_dir: Path,
    workload: core.Workload,
    runs: int,
    round_no: int,
) -> Round:
    """Our worker processes on ``runs`` runs: tasks/s, their CPU and the server's per task."""
    core.prepare_flow(target, workload, runs)
    samples: dict[str, Any] = {}

    def sample(_conn: psycopg.Connection[Any], procs: Any) -> None:
        # Called at every poll while the workers run; the last one is when the runs were done.
        samples["pids"] = {proc.pid for proc in procs}
        samples["after"] = _cpu_ticks()

    before = _cpu_ticks()
    measurement = suite.measure_worker(
        config,
        target,
        workload,
        runs,
        round_no,
        module_dir,
        target.name,
        on_poll=sample,
        poll_interval=0.05,
        source=src,
    )
    if measurement.problems:
        raise SystemExit(f"{target.name}, round {round_no}: {'; '.join(measurement.problems)}")
    done = measurement.completed_tasks
    return Round(
        target.name,
        measurement.tasks_per_second,
        _cpu_seconds(before, samples["after"], samples["pids"]) / done * 1e6,
        _cpu_seconds(before, samples["after"], None) / done * 1e6,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench ab", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--base", required=True, help="git revision measured as A")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side (6)")
    parser.add_argument("--runs", type=int, default=8000, help="runs per round (8000)")
    parser.add_argument("--workload", choices=sorted(core.WORKLOADS), default="chain")
    parser.add_argument(
        "--driver",
        choices=("worker", "core", "start", "latency"),
        default="worker",
        help="what is measured: our worker processes running the runs (default), bench.core's "
        "fixed loop of the SQL core's public functions running them, starting them "
        "(start_flow, one session, one commit per run), or the latency of --runs chains run "
        "one after the other by one idle worker (median start -> completed, chain only)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes: 2 for --driver worker, 4 for core (start and latency: one "
        "session, one worker)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(core.ENV_DATABASE_URL, core.DEFAULT_DATABASE_URL),
    )
    args = parser.parse_args(argv)
    if args.driver == "latency" and args.workload != "chain":
        parser.error("--driver latency measures the chain only")
    if args.workers is None:
        args.workers = {"core": 4, "start": 1, "latency": 1}.get(args.driver, 2)
    if min(args.rounds, args.runs, args.workers) < 1:
        parser.error("--rounds, --runs and --workers must be at least 1")
    workload = core.WORKLOADS[args.workload]
    core_config = core.Config(
        args.database_url, cores=[], workloads=[args.workload], raw=[], workers=args.workers
    )
    suite_config = suite.SuiteConfig(args.database_url, sections=["flows"], workers=args.workers)

    def measure(side: str, round_no: int, src: Path, module_dir: Path) -> Round:
        target = targets[side]
        if args.driver == "start":
            return measure_start(target, workload, args.runs)
        if args.driver == "latency":
            return measure_latency(target, src, module_dir, args.runs)
        if args.driver == "core":
            return measure_core_loop(core_config, target, workload, args.runs, round_no)
        return measure_worker(suite_config, target, src, module_dir, workload, args.runs, round_no)

    per = "run" if args.driver in ("start", "latency") else "task"
    unit = {"start": "runs started/s", "latency": "ms p50 latency"}.get(args.driver, "tasks/s")

    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as tmp, suite.flows_module() as module_dir:
        base_tree = Path(tmp) / "base"
        checkout = subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base_tree), args.base],
            capture_output=True,
            text=True,
            check=False,
        )
        if checkout.returncode != 0:
            raise SystemExit(f"cannot check out {args.base!r}: {checkout.stderr.strip()}")
        sources = {"A": base_tree / "src", "B": REPO / "src"}
        targets: dict[str, core.Target] = {}
        try:
            for side, src in sources.items():
                targets[side] = setup(args.database_url, side, src, workload)
            for number in range(1, args.rounds + 1):
                for side in "AB" if number % 2 else "BA":
                    result = measure(side, number, sources[side], module_dir)
                    rounds.append(result)
                    cpu = [
                        f"{who} {value:.0f} us"
                        for who, value in (
                            ("workers", result.worker_cpu_us),
                            ("PostgreSQL", result.server_cpu_us),
                        )
                        if not math.isnan(value)
                    ]
                    rate = (
                        f"{result.rate:.1f}" if args.driver == "latency" else f"{result.rate:,.0f}"
                    )
                    print(
                        f"round {number} {side}: {rate} {unit}"
                        + (f", CPU per {per}: {', '.join(cpu)}" if cpu else ""),
                        flush=True,
                    )
        finally:
            for target in targets.values():
                core._drop_database(args.database_url, target.dbname)
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)],
                check=False,
                capture_output=True,
            )

    def column(side: str, field: str) -> list[float]:
        return [float(getattr(r, field)) for r in rounds if r.side == side]

    driven_by = {
        "worker": f"{args.workers} worker processes",
        "core": f"{args.workers} processes of the fixed loop",
        "start": "start_flow in one session",
        "latency": "one idle worker, one run at a time",
    }[args.driver]
    print(f"\nA = {args.base}, B = working tree; {args.workload}, {driven_by}")
    for field, label in (
        ("rate", unit),
        ("worker_cpu_us", f"worker CPU us/{per}"),
        ("server_cpu_us", f"PostgreSQL CPU us/{per}"),
    ):
        a, b = column("A", field), column("B", field)
        if any(math.isnan(value) for value in a + b):
            continue
        ratios = ", ".join(f"{y / x:.3f}" for x, y in zip(a, b, strict=True))
        digits = 1 if field == "rate" and args.driver == "latency" else 0
        median_a, median_b = statistics.median(a), statistics.median(b)
        print(
            f"{label:24} A {median_a:8,.{digits}f}  B {median_b:8,.{digits}f}  "
            f"B/A {median_b / median_a:.3f}  (rounds: {ratios})"
        )
    return 0
