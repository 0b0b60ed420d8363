"""Peer suite: ours against upstream pgflow, PgQueuer, Procrastinate, raw pgmq and pgbench.

``python -m bench suite [--quick] [--only SECTIONS] [--json PATH] [--database-url URL] ...``

In one invocation on one PostgreSQL server, in rounds that alternate the systems (round 1 in one
order, round 2 reversed, ...), because the commit rate of a small shared machine drifts by tens
of percent within minutes: compare figures of one invocation only.

* ``flows``: the 3-step chain, the fan-in of 3 and the single step, run by OUR REAL WORKER
  (``pgflow worker`` processes, :mod:`bench.worker`) against the upstream ``@pgflow/core@0.8.1``
  SQL core driven by :mod:`bench.core`'s minimal loop, same number of processes, and raw pgmq
  with one acknowledgement per message (``pgmq-1ack``) after the chain;
* ``jobs``: single-step jobs, ours (``@job``) against PgQueuer (asyncpg driver, drain mode) and
  Procrastinate (its worker), each peer through its public API in processes of a virtualenv of
  its own (installed on first use, ``bench/peers/``);
* ``pgbench``: ``pgbench -N`` on a database of its own, the server's commit ceiling;
* ``history``: the chain again, on a database holding a million finished runs of another flow
  (made set-based, never through start_flow), against the empty one;
* ``map``: start_flow of a root map of 1,000 and 10,000 elements (ours and upstream), and how
  fast our workers complete it;
* ``latency``: start -> completed of single 3-step chains on an idle system, p50/p95/p99;
* ``memory``: the peak RSS of one worker process at max_concurrent 100 under load.

Throughput is always taken over the busy window from the systems' own tables (first task or
job started -> last one finished), never over idle tails. Durable settings for everyone: the
suite sets no synchronous_commit off, checks that no peer table is unlogged, and prints the
server's settings. The final table lists every target of issue #10 as met or unmet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench import core
from bench import worker as worker_bench
from bench._suite_flows import EXTRA_FLOWS, JOB_FLOWS, SLEEPY_SECONDS, WORKER_TARGETS

SECTIONS = ("flows", "jobs", "pgbench", "history", "map", "latency", "memory")
FLOW_WORKLOADS = ("chain", "fanin", "single")
PEERS_DIR = Path(__file__).resolve().parent / "peers"
ENV_PEERS_VENV = "PGFLOW_BENCH_PEERS_VENV"
DEFAULT_PEERS_VENV = Path.home() / ".cache" / "pgflow-bench" / "peers-venv"
#: What the peers' virtualenv gets on first use.
PEER_PACKAGES = ("pgqueuer", "asyncpg", "procrastinate", "psycopg[binary]")
#: Peer -> (driver script in bench/peers/, modules it imports).
PEERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pgqueuer": ("pgqueuer_driver.py", ("pgqueuer", "asyncpg")),
    "procrastinate": ("procrastinate_driver.py", ("procrastinate", "psycopg")),
}
PIP_TIMEOUT_SECONDS = 900
#: The environment variable that hands a peer driver its database URL.
PEER_URL_VARIABLE = "PGFLOW_BENCH_PEER_URL"
#: The flow whose finished runs make up the history; one step, slug ``job``.
HISTORY_FLOW = "bench_history"
HISTORY_CHUNK = 100_000
JOB_WORKLOAD = core.Workload(
    "job", "bench_job", (("bench_job", ()),), "single-step @job", warmup_runs=0, quick_runs=0
)
SLEEPY_WORKLOAD = core.Workload(
    "memory", "bench_sleepy", (("bench_sleepy", ()),), "sleepy @job", warmup_runs=0, quick_runs=0
)
MAP_WORKLOAD = core.Workload(
    "map", core.MAP_FLOW, ((core.MAP_STEP, ()),), "root map", warmup_runs=0, quick_runs=0
)
OURS = "ours-worker"
OURS_HISTORY = "ours-history"
SERVER_SETTINGS = (
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_level",
    "wal_sync_method",
    "wal_writer_delay",
    "commit_delay",
    "max_wal_size",
    "shared_buffers",
    "autovacuum",
)


# -- configuration ----------------------------------------------------------------------------


@dataclass
class SuiteConfig:
    database_url: str
    sections: list[str]
    rounds: int = 3
    workers: int = 2
    max_concurrent: int = 10
    batch_size: int = 10
    runs: dict[str, int] = field(
        default_factory=lambda: {"chain": 2000, "fanin": 1500, "single": 4000}
    )
    jobs: int = 5000
    history_runs: int = 1_000_000
    map_sizes: tuple[int, ...] = (1000, 10_000)
    map_repeats: int = 5
    latency_runs: int = 200
    memory_jobs: int = 3000
    memory_concurrency: int = 100
    pgbench_seconds: int = 10
    pgbench_clients: tuple[int, ...] = (2, 20)
    peers: str = "install"
    peers_venv: Path = DEFAULT_PEERS_VENV
    timeout_seconds: float = 300.0
    quick: bool = False
    keep_databases: bool = False
    json_path: str | None = None

    def core_config(self) -> core.Config:
        """bench.core's view: which databases to make, and its loop for upstream."""
        return core.Config(
            database_url=self.database_url,
            cores=["ours", "upstream"],
            workloads=list(FLOW_WORKLOADS),
            raw=["pgmq-1ack"],
            workers=self.workers,
            rounds=self.rounds,
            runs=dict(self.runs),
            quick=self.quick,
            keep_databases=self.keep_databases,
            timeout_seconds=self.timeout_seconds,
        )


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers: {text!r}")
    return values


def parse_args(argv: Sequence[str]) -> SuiteConfig:
    parser = argparse.ArgumentParser(
        prog="python -m bench suite",
        description="Ours against upstream pgflow, PgQueuer, Procrastinate, raw pgmq and pgbench, "
        "alternately, in one invocation on one server, with every target of issue #10 marked met "
        "or unmet. Creates and drops its own databases.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(core.ENV_DATABASE_URL, core.DEFAULT_DATABASE_URL),
        help=f"maintenance database of the server (default ${core.ENV_DATABASE_URL} or "
        f"{core.DEFAULT_DATABASE_URL}); the suite creates databases beside it",
    )
    parser.add_argument(
        "--only",
        type=core._parse_list(SECTIONS),
        default=list(SECTIONS),
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "-n", "--workers", type=int, default=2, help="worker / consumer processes per system (2)"
    )
    parser.add_argument(
        "--runs",
        type=core._parse_runs,
        default={},
        help="runs per measurement: N or chain=N,fanin=N,single=N (2000, 1500, 4000)",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=10,
        help="tasks one worker (and one peer consumer) runs at once, as its concurrency "
        "(10, the worker's default)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10,
        help="tasks one worker (and one peer consumer) takes per fetch (10, the default)",
    )
    parser.add_argument("--jobs", type=int, help="single-step jobs per measurement (5000)")
    parser.add_argument(
        "--history-runs", type=int, help="finished runs in the history database (1000000)"
    )
    parser.add_argument("--map-sizes", type=_int_list, help="root map lengths (1000,10000)")
    parser.add_argument("--latency-runs", type=int, help="sequential chains timed (200)")
    parser.add_argument(
        "--memory-jobs", type=int, help="sleepy jobs run by the memory measurement (3000)"
    )
    parser.add_argument("--pgbench-seconds", type=int, help="length of each pgbench run (10)")
    parser.add_argument(
        "--pgbench-clients", type=_int_list, help="pgbench client counts, one run each (2,20)"
    )
    parser.add_argument(
        "--peers",
        choices=("install", "existing", "skip"),
        default="install",
        help="PyPI peers: install them into their virtualenv when missing (default), use only "
        "an existing one, or skip them",
    )
    parser.add_argument(
        "--peers-venv",
        type=Path,
        default=Path(os.environ.get(ENV_PEERS_VENV) or DEFAULT_PEERS_VENV),
        help=f"the peers' virtualenv (default ${ENV_PEERS_VENV} or {DEFAULT_PEERS_VENV})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round, tiny sizes (about two minutes, figures are not meaningful)",
    )
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON here")
    parser.add_argument(
        "--keep-databases", action="store_true", help="do not drop the databases at the end"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up on a measurement after this (300 s)"
    )
    ns = parser.parse_args(argv)
    config = SuiteConfig(
        database_url=ns.database_url,
        sections=[s for s in SECTIONS if s in ns.only],
        rounds=ns.rounds,
        workers=ns.workers,
        max_concurrent=ns.max_concurrent,
        batch_size=ns.batch_size,
        peers=ns.peers,
        peers_venv=ns.peers_venv,
        timeout_seconds=ns.timeout,
        quick=ns.quick,
        keep_databases=ns.keep_databases,
        json_path=ns.json_path,
    )
    if config.quick:
        config.rounds = 1
        config.runs = {"chain": 30, "fanin": 20, "single": 60}
        config.jobs = 100
        config.history_runs = 2000
        config.map_sizes = (100, 1000)
        config.map_repeats = 2
        config.latency_runs = 10
        config.memory_jobs = 300
        config.pgbench_seconds = 2
        config.pgbench_clients = (2,)
        config.timeout_seconds = min(config.timeout_seconds, 60.0)
    config.runs.update(ns.runs)
    for name in ("jobs", "history_runs", "map_sizes", "latency_runs", "memory_jobs"):
        if getattr(ns, name) is not None:
            setattr(config, name, getattr(ns, name))
    if ns.pgbench_seconds is not None:
        config.pgbench_seconds = ns.pgbench_seconds
    if ns.pgbench_clients is not None:
        config.pgbench_clients = ns.pgbench_clients
    numbers = [config.rounds, config.workers, config.jobs, config.latency_runs, config.memory_jobs,
               config.max_concurrent, config.batch_size]  # fmt: skip
    if min(numbers) < 1 or min(config.runs.values()) < 1 or config.pgbench_seconds < 1:
        parser.error(
            "--rounds, --workers, --runs, --jobs, --latency-runs, --memory-jobs, "
            "--max-concurrent, --batch-size and --pgbench-seconds must be at least 1"
        )
    if config.history_runs < 0:
        parser.error("--history-runs must not be negative")
    if not config.sections:
        parser.error("--only names no section")
    return config


def _log(message: str) -> None:
    print(f"[bench suite {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- our real worker ----------------------------------------------------------------------------


@contextlib.contextmanager
def flows_module() -> Iterator[Path]:
    """A directory holding ``bench_flows.py``: the chain of bench.worker plus the suite's flows."""
    with tempfile.TemporaryDirectory(prefix="pgflow-bench-suite-") as tmp:
        module_dir = Path(tmp)
        (module_dir / "bench_flows.py").write_text(worker_bench.FLOWS + EXTRA_FLOWS)
        yield module_dir


def _add_job_flows(target: core.Target) -> None:
    """Create the suite's own jobs in a core database made by bench.core, and know their queues."""
    with target.connect() as conn, conn.transaction():
        for slug in JOB_FLOWS:
            conn.execute("SELECT 1 FROM pgflow.create_flow(flow_slug => %s)", (slug,))
            conn.execute(
                "SELECT 1 FROM pgflow.add_step(flow_slug => %s, step_slug => %s)", (slug, slug)
            )
    with target.connect() as conn:
        for slug in JOB_FLOWS:
            target.tables[slug] = core._queue_tables(conn, slug)


def measure_worker(
    config: SuiteConfig,
    target: core.Target,
    workload: core.Workload,
    runs: int,
    round_no: int,
    module_dir: Path,
    subject: str,
    *,
    expected_tasks: int | None = None,
    processes: int | None = None,
    max_concurrent: int | None = None,
    on_poll: Callable[[psycopg.Connection[Any], Sequence[subprocess.Popen[bytes]]], None]
    | None = None,
    poll_interval: float = 0.2,
    source: Path | None = None,
) -> core.Measurement:
    """Our ``pgflow worker`` processes on runs started beforehand, until every run is done
    (``source``: run the ``pgflow`` of that ``src`` directory, see ``worker._spawn``)."""
    with target.connect() as conn:
        core._checkpoint(conn)
    began = time.perf_counter()
    procs = worker_bench._spawn(
        target.url,
        module_dir,
        processes or config.workers,
        max_concurrent or config.max_concurrent,
        config.batch_size,
        target=f"bench_flows:{WORKER_TARGETS[workload.flow_slug]}",
        source=source,
    )
    try:
        finished = worker_bench.wait_for_runs(
            target.url,
            workload.flow_slug,
            config.timeout_seconds,
            procs,
            None if on_poll is None else lambda conn: on_poll(conn, procs),
            poll_interval,
        )
        exit_codes = [proc.poll() for proc in procs]
    finally:
        worker_bench._stop(procs)
    problems = []
    if not finished:
        problems.append(
            f"the worker processes exited early (exit codes {exit_codes})"
            if all(code is not None for code in exit_codes)
            else f"timed out after {config.timeout_seconds:.0f} s"
        )
    measurement = core.flow_outcome(
        target,
        workload,
        runs,
        round_no,
        time.perf_counter() - began,
        problems,
        expected_tasks,
    )
    measurement.subject = subject
    return measurement


# -- the history database -----------------------------------------------------------------------


_HISTORY_INSERT = """
WITH r AS (
    INSERT INTO pgflow.runs
        (flow_slug, status, input, output, remaining_steps, started_at, completed_at)
    SELECT %(flow)s, 'completed', jsonb_build_object('n', g), '{"job": 1}'::jsonb, 0,
           now() - make_interval(secs => %(total)s - g),
           now() - make_interval(secs => %(total)s - g) + interval '5 milliseconds'
    FROM generate_series(%(first)s::int, %(last)s::int) AS g
    RETURNING run_id, started_at, completed_at
), s AS (
    INSERT INTO pgflow.step_states (flow_slug, run_id, step_slug, status, remaining_tasks,
        initial_tasks, remaining_deps, created_at, started_at, completed_at)
    SELECT %(flow)s, run_id, 'job', 'completed', 0, 1, 0, started_at, started_at, completed_at
    FROM r
    RETURNING run_id, started_at, completed_at
)
INSERT INTO pgflow.step_tasks (flow_slug, run_id, step_slug, task_index, status,
    attempts_count, output, queued_at, started_at, completed_at)
SELECT %(flow)s, run_id, 'job', 0, 'completed', 1, '1'::jsonb, started_at, started_at,
       completed_at
FROM s
"""


def generate_history(target: core.Target, runs: int) -> float:
    """``runs`` completed one-step runs of HISTORY_FLOW, set-based; returns the seconds it took."""
    began = time.perf_counter()
    with target.connect() as conn:
        conn.execute("SELECT 1 FROM pgflow.create_flow(flow_slug => %s)", (HISTORY_FLOW,))
        conn.execute(
            "SELECT 1 FROM pgflow.add_step(flow_slug => %s, step_slug => 'job')", (HISTORY_FLOW,)
        )
        for first in range(1, runs + 1, HISTORY_CHUNK):
            last = min(runs, first + HISTORY_CHUNK - 1)
            conn.execute(
                _HISTORY_INSERT, {"flow": HISTORY_FLOW, "total": runs, "first": first, "last": last}
            )
            _log(f"history: {last:,} of {runs:,} finished runs")
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - began


def prepare_keeping_history(target: core.Target, workload: core.Workload, runs: int) -> None:
    """As core.prepare_flow, but delete the bench flows' rows instead of truncating the tables."""
    bench_flows = list(target.tables)
    with target.connect() as conn:
        core._reset(conn, target, pgflow_state=False)
        for table in ("step_tasks", "step_states", "runs"):
            conn.execute(
                psycopg.sql.SQL("DELETE FROM {} WHERE flow_slug = ANY(%s)").format(
                    psycopg.sql.Identifier("pgflow", table)
                ),
                (bench_flows,),
            )
        core._start_runs(conn, workload.flow_slug, runs)
        core._settle(conn, checkpoint=False)


# -- peers ------------------------------------------------------------------------------------


class PeerError(RuntimeError):
    """A peer driver command that failed."""


@dataclass
class Peer:
    name: str
    python: Path
    dbname: str
    url: str
    version: str = ""

    @property
    def driver(self) -> Path:
        return PEERS_DIR / PEERS[self.name][0]

    def command(self, command: str, *options: str) -> list[str]:
        return [str(self.python), str(self.driver), command, *options]

    @property
    def env(self) -> dict[str, str]:
        """The environment of a driver process: the URL goes there, not on the command line."""
        return {**os.environ, PEER_URL_VARIABLE: self.url}

    def call(self, command: str, *options: str, timeout: float = 300.0) -> dict[str, Any]:
        done = subprocess.run(
            self.command(command, *options),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return _driver_output(self.name, command, done.returncode, done.stdout, done.stderr)


def _driver_output(name: str, command: str, code: int, stdout: str, stderr: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    if code != 0 or not lines:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        raise PeerError(f"{name} {command}: exit {code}: {last}")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except ValueError as exc:
        raise PeerError(f"{name} {command}: not a JSON result: {lines[-1][:200]}") from exc
    return result


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _importable(python: Path, modules: Sequence[str]) -> str | None:
    """None when ``python`` imports every module, else why not."""
    if not python.exists():
        return f"no python at {python}"
    done = subprocess.run(
        [str(python), "-c", "import " + ", ".join(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or ["import failed"])[-1]


def peer_pythons(config: SuiteConfig) -> tuple[dict[str, Path], dict[str, str]]:
    """Per peer the virtualenv python that can run its driver, or the reason it cannot."""
    if config.peers == "skip":
        return {}, dict.fromkeys(PEERS, "skipped (--peers skip)")
    python = _venv_python(config.peers_venv)
    missing = {name: _importable(python, modules) for name, (_, modules) in PEERS.items()}
    if any(missing.values()) and config.peers == "install":
        _log(f"installing {' '.join(PEER_PACKAGES)} into {config.peers_venv}")
        try:
            if not python.exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(config.peers_venv)],
                    capture_output=True,
                    check=True,
                    timeout=300,
                )
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES],
                capture_output=True,
                text=True,
                check=True,
                timeout=PIP_TIMEOUT_SECONDS,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            reason = f"cannot install {' '.join(PEER_PACKAGES)}: {_subprocess_failure(exc)}"
            return {}, dict.fromkeys(PEERS, reason)
        missing = {name: _importable(python, modules) for name, (_, modules) in PEERS.items()}
    found = {name: python for name, reason in missing.items() if reason is None}
    reasons = {name: reason for name, reason in missing.items() if reason is not None}
    if config.peers == "existing":
        reasons = {
            name: f"{reason} (--peers existing; --peers install installs it)"
            for name, reason in reasons.items()
        }
    return found, reasons


def _subprocess_failure(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        output = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
        lines = [line for line in output.strip().splitlines() if "WARNING" not in line]
        return f"exit {exc.returncode}: {' | '.join(lines[-2:]) or 'no output'}"
    return str(exc) or type(exc).__name__


def as_url(conninfo: str) -> str:
    """A ``postgresql://`` URL for a libpq connection string (asyncpg takes URLs only)."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = urllib.parse.quote(str(params.pop("user", "") or ""), safe="")
    password = urllib.parse.quote(str(params.pop("password", "") or ""), safe="")
    host = str(params.pop("host", "") or "")
    port = str(params.pop("port", "") or "")
    dbname = urllib.parse.quote(str(params.pop("dbname", "") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    if host.startswith("/"):  # a socket directory goes into the query, as both drivers read it
        params["host"], host = host, ""
    netloc = f"[{host}]" if ":" in host else host
    query = urllib.parse.urlencode({key: str(value) for key, value in params.items()})
    return f"postgresql://{credentials}{netloc}{':' + port if port else ''}/{dbname}" + (
        f"?{query}" if query else ""
    )


def setup_peer(config: SuiteConfig, name: str, python: Path, tag: str) -> Peer:
    dbname = f"pgflow_bench_{name}_{tag}"
    url = as_url(core._create_database(config.database_url, dbname))
    peer = Peer(name, python, dbname, url)
    peer.version = str(peer.call("install")["version"])
    with psycopg.connect(url, autocommit=True) as conn:
        unlogged = conn.execute(
            "SELECT string_agg(relname, ', ') FROM pg_class WHERE relpersistence = 'u'"
        ).fetchone()
    if unlogged and unlogged[0]:
        raise PeerError(f"{name} installed unlogged tables ({unlogged[0]}): not durable")
    return peer


def prepare_peer(peer: Peer, jobs: int) -> None:
    peer.call("reset")
    peer.call("enqueue", "--count", str(jobs))
    with psycopg.connect(peer.url, autocommit=True) as conn:
        core._settle(conn, checkpoint=False)


def measure_peer(config: SuiteConfig, peer: Peer, jobs: int, round_no: int) -> core.Measurement:
    """The peer's own consumers, ``config.workers`` processes, until its queue is empty."""
    with psycopg.connect(peer.url, autocommit=True) as conn:
        core._checkpoint(conn)
    began = time.perf_counter()
    options = ("--concurrency", str(config.max_concurrent), "--batch-size", str(config.batch_size))
    procs = [
        subprocess.Popen(
            peer.command("consume", *options),
            env=peer.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(config.workers)
    ]
    problems: list[str] = []
    deadline = began + config.timeout_seconds
    for index, proc in enumerate(procs):
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.perf_counter()))
            _driver_output(peer.name, "consume", proc.returncode, stdout, stderr)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by handle
            proc.communicate()
            problems.append(f"consumer {index}: timed out after {config.timeout_seconds:.0f} s")
        except PeerError as exc:
            problems.append(f"consumer {index}: {exc}")
    wall = time.perf_counter() - began
    stats = peer.call("stats")
    completed, busy = int(stats["completed"]), float(stats["busy_seconds"])
    if completed != jobs:
        problems.append(f"{completed} of {jobs} jobs completed")
    if stats["left"]:
        problems.append(f"{stats['left']} jobs left in the queue")
    return core.Measurement(
        subject=peer.name,
        workload="job",
        round=round_no,
        runs=jobs,
        expected_tasks=jobs,
        completed_tasks=completed,
        completed_runs=completed,
        busy_seconds=busy,
        tasks_per_second=completed / busy if busy > 0 else 0.0,
        wall_seconds=wall,
        problems=problems,
        calls={},
    )


# -- pgbench ----------------------------------------------------------------------------------


def pgbench_binary() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
        key=lambda path: int(re.sub(r"\D", "", Path(path).parts[-3]) or 0),
    )
    return candidates[-1] if candidates else None


def setup_pgbench(config: SuiteConfig, binary: str, tag: str) -> tuple[str, str]:
    dbname = f"pgflow_bench_pgbench_{tag}"
    url = core._create_database(config.database_url, dbname)
    subprocess.run(
        [binary, "-i", "-q", "-s", "1", url], capture_output=True, check=True, timeout=300
    )
    return dbname, url


def measure_pgbench(
    config: SuiteConfig, binary: str, url: str, clients: int, round_no: int
) -> core.Measurement:
    """``pgbench -N`` (no branch/teller updates: one short write transaction per commit)."""
    threads = max(1, min(clients, os.cpu_count() or 1))
    args = [binary, "-N", "-n", "-c", str(clients), "-j", str(threads)]
    with psycopg.connect(url, autocommit=True) as conn:
        core._settle(conn)
    began = time.perf_counter()
    done = subprocess.run(
        [*args, "-T", str(config.pgbench_seconds), url],
        capture_output=True,
        text=True,
        timeout=config.pgbench_seconds + 120,
        check=False,
    )
    wall = time.perf_counter() - began
    found = re.search(r"^tps = ([0-9.]+)", done.stdout, re.MULTILINE)
    transactions = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    problems = []
    if done.returncode != 0 or not found:
        problems.append(f"pgbench exit {done.returncode}: {done.stderr.strip()[-200:]}")
    count = int(transactions.group(1)) if transactions else 0
    return core.Measurement(
        subject=f"pgbench -c {clients}",
        workload="pgbench",
        round=round_no,
        runs=count,
        expected_tasks=count,
        completed_tasks=count,
        completed_runs=count,
        busy_seconds=float(config.pgbench_seconds),
        tasks_per_second=float(found.group(1)) if found else 0.0,
        wall_seconds=wall,
        problems=problems,
        calls={},
    )


# -- rounds -----------------------------------------------------------------------------------


@dataclass
class Contender:
    """One system in an alternating comparison: how to prepare it, how to measure it."""

    name: str
    prepare: Callable[[], None]
    measure: Callable[[int], core.Measurement]


def alternate(
    contenders: Sequence[Contender], round_no: int, rounds: int
) -> list[core.Measurement]:
    """Prepare every contender, then measure them back to back, in alternating order."""
    order = core._order(contenders, round_no)
    for contender in order:
        contender.prepare()
    measurements = []
    for contender in order:
        m = contender.measure(round_no)
        m.load = os.getloadavg()[0]
        _log(f"round {round_no}/{rounds} {core._describe(m)}")
        measurements.append(m)
    return measurements


def _percentile_summary(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None}
    return {
        "count": len(values),
        **{f"p{p}": worker_bench._pct(list(values), p) for p in (50, 95, 99)},
    }


def measure_map(
    config: SuiteConfig,
    ours: core.Target,
    upstream: core.Target | None,
    module_dir: Path,
) -> dict[str, Any]:
    """start_flow latency of root maps (ours and upstream alternating), our workers' rate."""
    results: dict[str, Any] = {}
    cores = [(OURS, ours)] + ([("upstream", upstream)] if upstream is not None else [])
    for size in config.map_sizes:
        map_config = config.core_config()
        map_config.map_size = size
        times: dict[str, list[float]] = {name: [] for name, _ in cores}
        problems: list[str] = []
        for _, target in cores:  # untimed warm-up: plans cached, pages in memory
            core.measure_map_start(map_config, target)
        for repeat in range(1, config.map_repeats + 1):
            for name, target in core._order(cores, repeat):
                elapsed, found = core.measure_map_start(map_config, target)
                times[name].append(elapsed)
                problems.extend(f"{name}: {p}" for p in found)
        with ours.connect() as conn:
            core._reset(conn, ours, pgflow_state=True)
            conn.execute(
                "SELECT 1 FROM pgflow.start_flow(flow_slug => %s, input => %s)",
                (core.MAP_FLOW, Jsonb(list(range(size)))),
            )
            core._settle(conn, checkpoint=False)
        done = measure_worker(
            config, ours, MAP_WORKLOAD, 1, 1, module_dir, OURS, expected_tasks=size
        )
        starts = ", ".join(f"{ms:.1f}" for ms in times[OURS])
        _log(f"map of {size}: start_flow {starts} ms; {core._describe(done)}")
        results[str(size)] = {
            "start_ms": {
                name: {"ms": values, "median_ms": core._median(values)}
                for name, values in times.items()
            },
            "completion": done.as_dict(),
            "problems": problems + done.problems,
        }
    return results


def measure_latency(config: SuiteConfig, ours: core.Target, module_dir: Path) -> dict[str, Any]:
    with ours.connect() as conn:
        core._reset(conn, ours, pgflow_state=True)
        core._settle(conn)
    values = asyncio.run(worker_bench._latency(ours.url, module_dir, config.latency_runs))
    summary = {name: _percentile_summary(series) for name, series in values.items()}
    _log(f"idle latency start -> completed: {summary}")
    return summary


def _proc_status_kib(pid: int, field_name: str) -> int | None:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return None


def measure_memory(config: SuiteConfig, ours: core.Target, module_dir: Path) -> dict[str, Any]:
    """One worker at max_concurrent N on a backlog of sleepy jobs: its RSS, sampled, and peak."""
    with ours.connect() as conn:
        core._reset(conn, ours, pgflow_state=True)
        core._start_runs(conn, SLEEPY_WORKLOAD.flow_slug, config.memory_jobs)
        core._settle(conn, checkpoint=False)
    peaks = {"VmRSS": 0, "VmHWM": 0, "in_flight": 0}

    def sample(conn: psycopg.Connection[Any], procs: Sequence[subprocess.Popen[bytes]]) -> None:
        for name in ("VmRSS", "VmHWM"):
            peaks[name] = max(peaks[name], _proc_status_kib(procs[0].pid, name) or 0)
        row = conn.execute(
            "SELECT count(*) FROM pgflow.step_tasks WHERE flow_slug = %s AND status = 'started'",
            (SLEEPY_WORKLOAD.flow_slug,),
        ).fetchone()
        peaks["in_flight"] = max(peaks["in_flight"], int(row[0]) if row else 0)

    m = measure_worker(
        config,
        ours,
        SLEEPY_WORKLOAD,
        config.memory_jobs,
        1,
        module_dir,
        OURS,
        processes=1,
        max_concurrent=config.memory_concurrency,
        on_poll=sample,
        poll_interval=0.1,
    )
    result: dict[str, Any] = {
        "max_concurrent": config.memory_concurrency,
        "jobs": config.memory_jobs,
        "sleep_ms": SLEEPY_SECONDS * 1000,
        # VmHWM is the kernel's own peak of the resident set; VmRSS is sampled every 0.1 s.
        "peak_rss_mb": peaks["VmHWM"] / 1024 if peaks["VmHWM"] else None,
        "max_sampled_rss_mb": peaks["VmRSS"] / 1024 if peaks["VmRSS"] else None,
        "max_tasks_in_flight": peaks["in_flight"],
        "measurement": m.as_dict(),
        "problems": list(m.problems),
    }
    if result["peak_rss_mb"] is None:
        result["problems"].append("the worker's /proc/<pid>/status could not be read")
    _log(f"memory: {result['peak_rss_mb']} MB peak, {peaks['in_flight']} tasks in flight")
    return result


# -- orchestration ------------------------------------------------------------------------------


def _server_info(config: SuiteConfig) -> dict[str, Any]:
    server = core._server_info(config.core_config())
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, setting || coalesce(' ' || unit, '') FROM pg_settings "
            "WHERE name = ANY(%s)",
            (list(SERVER_SETTINGS),),
        ).fetchall()
    settings: dict[str, str] = dict(rows)
    server["settings"] = {name: settings.get(name) for name in SERVER_SETTINGS}
    return server


@dataclass
class Setup:
    """Everything the rounds run on; unavailable systems are left out with their reason."""

    ours: core.Target
    upstream: core.Target | None = None
    raw: core.Target | None = None
    history: core.Target | None = None
    peers: dict[str, Peer] = field(default_factory=dict)
    pgbench: tuple[str, str] | None = None  # (binary, url)
    databases: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    systems: dict[str, str] = field(default_factory=dict)
    history_seconds: float | None = None


def _setup(config: SuiteConfig, tag: str, setup: Setup) -> None:
    """Fill ``setup`` (already holding our core) with what the sections need."""
    core_config = config.core_config()
    sections = config.sections
    if "flows" in sections or "map" in sections:
        _log("installing upstream @pgflow/core")
        try:
            setup.upstream = core.setup_core(core_config, "upstream", tag)
            setup.databases.append(setup.upstream.dbname)
            setup.systems["upstream"] = (
                f"{setup.upstream.version}, driven by bench.core's SQL loop "
                f"({config.workers} processes)"
            )
        except core.UnavailableError as exc:
            setup.unavailable["upstream"] = str(exc)
            _log(f"UPSTREAM UNAVAILABLE, going on without it: {exc}")
    if "flows" in sections:
        setup.raw = core.setup_raw(core_config, tag)
        setup.databases.append(setup.raw.dbname)
        setup.systems["pgmq-1ack"] = f"{setup.raw.version}: {core.RAW_KINDS['pgmq-1ack']}"
    if "history" in sections:
        history = core.setup_core(core_config, "ours", f"{tag}_history")
        setup.databases.append(history.dbname)
        history.name = OURS_HISTORY
        _log(f"history: generating {config.history_runs:,} finished runs of {HISTORY_FLOW}")
        setup.history_seconds = generate_history(history, config.history_runs)
        setup.history = history
        setup.systems[OURS_HISTORY] = (
            f"ours-worker on a database holding {config.history_runs:,} finished runs of another "
            f"flow (generated in {setup.history_seconds:.0f} s)"
        )
    if "jobs" in sections:
        pythons, reasons = peer_pythons(config)
        setup.unavailable.update(reasons)
        for name, python in pythons.items():
            _log(f"installing {name} into its database")
            try:
                peer = setup_peer(config, name, python, tag)
            except (PeerError, subprocess.SubprocessError, OSError, psycopg.Error) as exc:
                setup.unavailable[name] = str(exc)
                continue
            finally:
                setup.databases.append(f"pgflow_bench_{name}_{tag}")
            setup.peers[name] = peer
        if "pgqueuer" in setup.peers:
            setup.systems["pgqueuer"] = (
                f"PgQueuer {setup.peers['pgqueuer'].version}, asyncpg driver, drain mode, "
                f"batch {config.batch_size}, {config.workers} processes, durable tables"
            )
        if "procrastinate" in setup.peers:
            setup.systems["procrastinate"] = (
                f"Procrastinate {setup.peers['procrastinate'].version}, its worker (wait=False), "
                f"concurrency {config.max_concurrent}, {config.workers} processes"
            )
    if "pgbench" in sections:
        binary = pgbench_binary()
        if binary is None:
            setup.unavailable["pgbench"] = "no pgbench on PATH nor in /usr/lib/postgresql/*/bin"
        else:
            try:
                dbname, url = setup_pgbench(config, binary, tag)
            except (subprocess.SubprocessError, OSError) as exc:
                setup.unavailable["pgbench"] = _subprocess_failure(exc)
            else:
                setup.databases.append(dbname)
                setup.pgbench = (binary, url)
                setup.systems["pgbench"] = (
                    f"{binary} -N (scale 1), {config.pgbench_seconds} s per run, clients "
                    f"{', '.join(map(str, config.pgbench_clients))}"
                )


def _round(
    config: SuiteConfig, setup: Setup, module_dir: Path, round_no: int
) -> list[core.Measurement]:
    core_config = config.core_config()
    measurements: list[core.Measurement] = []
    ours, upstream, history = setup.ours, setup.upstream, setup.history
    keys = FLOW_WORKLOADS if "flows" in config.sections else ("chain",) if history else ()
    for key in keys:
        workload, runs = core.WORKLOADS[key], config.runs[key]
        contenders = [
            Contender(
                OURS,
                partial(core.prepare_flow, ours, workload, runs),
                partial(measure_worker, config, ours, workload, runs, module_dir=module_dir,
                        subject=OURS),
            )
        ]  # fmt: skip
        if upstream is not None and "flows" in config.sections:
            contenders.append(
                Contender(
                    "upstream",
                    partial(core.prepare_flow, upstream, workload, runs),
                    partial(core.measure_flow, core_config, upstream, workload, runs,
                            prepared=True),
                )
            )  # fmt: skip
        if history is not None and key == "chain":
            contenders.append(
                Contender(
                    OURS_HISTORY,
                    partial(prepare_keeping_history, history, workload, runs),
                    partial(measure_worker, config, history, workload, runs,
                            module_dir=module_dir, subject=OURS_HISTORY),
                )
            )  # fmt: skip
        measurements += alternate(contenders, round_no, config.rounds)
        if key == "chain" and setup.raw is not None:
            m = core.measure_raw(core_config, setup.raw, "pgmq-1ack", runs, round_no)
            m.load = os.getloadavg()[0]
            _log(f"round {round_no}/{config.rounds} {core._describe(m)}")
            measurements.append(m)
    if "jobs" in config.sections:
        jobs = config.jobs
        contenders = [
            Contender(
                OURS,
                partial(core.prepare_flow, ours, JOB_WORKLOAD, jobs),
                partial(measure_worker, config, ours, JOB_WORKLOAD, jobs, module_dir=module_dir,
                        subject=OURS),
            )
        ]  # fmt: skip
        contenders += [
            Contender(
                peer.name,
                partial(prepare_peer, peer, jobs),
                partial(measure_peer, config, peer, jobs),
            )
            for peer in setup.peers.values()
        ]
        measurements += alternate(contenders, round_no, config.rounds)
    if setup.pgbench is not None:
        binary, url = setup.pgbench
        for clients in config.pgbench_clients:
            m = measure_pgbench(config, binary, url, clients, round_no)
            m.load = os.getloadavg()[0]
            _log(
                f"round {round_no}/{config.rounds} pgbench -c {clients}: "
                f"{m.tasks_per_second:.0f} tps"
            )
            measurements.append(m)
    return measurements


def run(config: SuiteConfig) -> dict[str, Any]:
    tag = f"{os.getpid():x}{uuid.uuid4().hex[:4]}"
    begun = time.perf_counter()
    server = _server_info(config)
    _log(
        f"PostgreSQL {server['server_version']} at {server['host']}:{server['port']}; sections "
        f"{', '.join(config.sections)}; {config.rounds} round(s)"
    )
    ours = core.setup_core(config.core_config(), "ours", tag)
    setup = Setup(ours=ours, databases=[ours.dbname])
    setup.systems[OURS] = (
        f"{ours.version}: our core and real `pgflow worker` processes ({config.workers} x "
        f"max_concurrent {config.max_concurrent}, batch {config.batch_size})"
    )
    measurements: list[core.Measurement] = []
    extra: dict[str, Any] = {}
    try:
        _add_job_flows(ours)
        _setup(config, tag, setup)
        with flows_module() as module_dir:
            for round_no in range(1, config.rounds + 1):
                measurements += _round(config, setup, module_dir, round_no)
            if "map" in config.sections:
                extra["map"] = measure_map(config, ours, setup.upstream, module_dir)
            if "latency" in config.sections:
                extra["latency"] = measure_latency(config, ours, module_dir)
            if "memory" in config.sections:
                extra["memory"] = measure_memory(config, ours, module_dir)
    finally:
        if not config.keep_databases:
            for dbname in setup.databases:
                with contextlib.suppress(psycopg.Error):
                    core._drop_database(config.database_url, dbname)
    return _results(config, server, setup, measurements, extra, time.perf_counter() - begun)


# -- results ----------------------------------------------------------------------------------

#: Workload key -> its title in the report.
WORKLOAD_TITLES = {
    **{key: core.WORKLOADS[key].title for key in FLOW_WORKLOADS},
    "job": "single-step jobs (ours: @job)",
    "pgbench": "pgbench -N, transactions",
}
#: Which peers belong to which workload (for the "unavailable" rows).
WORKLOAD_PEERS = {
    "chain": ("upstream", OURS_HISTORY, "pgmq-1ack"),
    "fanin": ("upstream",),
    "single": ("upstream",),
    "job": tuple(PEERS),
    "pgbench": ("pgbench",),
}


def _rates(measurements: Sequence[core.Measurement], workload: str) -> dict[str, dict[int, float]]:
    """subject -> round -> tasks/s of one workload."""
    found: dict[str, dict[int, float]] = {}
    for m in measurements:
        if m.workload == workload:
            found.setdefault(m.subject, {})[m.round] = m.tasks_per_second
    return found


def _ratio(numerator: dict[int, float], denominator: dict[int, float]) -> dict[str, Any]:
    """Per-round ratios (neighbouring measurements) and their median."""
    rounds = [
        numerator[r] / denominator[r]
        for r in sorted(numerator)
        if r in denominator and denominator[r] > 0
    ]
    return {"rounds": rounds, "median": core._median(rounds)}


def _throughput(
    config: SuiteConfig, measurements: Sequence[core.Measurement]
) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    job_rates = _rates(measurements, "job")
    for workload in WORKLOAD_TITLES:
        rates = _rates(measurements, workload)
        if not rates:
            continue
        # The commit ceiling is compared with our single-step jobs, one commit-bound job each.
        ours = rates.get(OURS) or (job_rates.get(OURS, {}) if workload == "pgbench" else {})
        table[workload] = {
            "title": WORKLOAD_TITLES[workload],
            "per_second": {
                subject: {
                    "rounds": [per_round.get(r) for r in range(1, config.rounds + 1)],
                    "median": core._median(list(per_round.values())),
                }
                for subject, per_round in rates.items()
            },
            "ours_over": {
                subject: _ratio(ours, per_round)
                for subject, per_round in rates.items()
                if subject != OURS and ours
            },
        }
    return table


def _check(
    target: str, goal: str, value: float | None, met: Callable[[float], bool], figure: str,
    missing: str, note: str = "",
) -> dict[str, Any]:  # fmt: skip
    if value is None:
        return {"target": target, "goal": goal, "figure": "-", "status": f"not measured: {missing}",
                "met": None, "note": ""}  # fmt: skip
    return {"target": target, "goal": goal, "figure": figure, "met": met(value),
            "status": "met" if met(value) else "UNMET", "note": note}  # fmt: skip


def _targets(
    config: SuiteConfig,
    throughput: dict[str, dict[str, Any]],
    extra: dict[str, Any],
    unavailable: dict[str, str],
) -> list[dict[str, Any]]:
    def ratio(workload: str, subject: str) -> float | None:
        value = throughput.get(workload, {}).get("ours_over", {}).get(subject, {}).get("median")
        return float(value) if value is not None else None

    def why(section: str, subject: str | None = None) -> str:
        if section not in config.sections:
            return f"section {section} not run"
        if subject in unavailable:
            return f"{subject} unavailable (see systems)"
        return "no figure (see PROBLEMS)"

    quick = "quick run: sizes below the target's" if config.quick else ""
    checks = []
    value = ratio("chain", "upstream")
    checks.append(_check(
        "3-step chain, no-op handlers, 2 worker processes: ours vs upstream core tasks/s",
        ">= 5x", value, lambda v: v >= 5.0, f"{value or 0:.2f}x", why("flows", "upstream"),
        "" if config.workers == 2 else f"{config.workers} processes",
    ))  # fmt: skip
    value = ratio("job", "pgqueuer")
    checks.append(_check(
        "single-step jobs: ours vs PgQueuer (asyncpg, drain mode) jobs/s, 2 processes each",
        ">= 1x", value, lambda v: v >= 1.0, f"{value or 0:.2f}x", why("jobs", "pgqueuer"),
    ))  # fmt: skip
    latency = extra.get("latency", {}).get("database", {})
    for percentile, limit in (("p50", 10.0), ("p99", 50.0)):
        value = latency.get(percentile)
        checks.append(_check(
            f"idle latency start -> completed, 3-step chain, {percentile}",
            f"<= {limit:.0f} ms", value, partial(operator.ge, limit), f"{value or 0:.1f} ms",
            why("latency"), quick,
        ))  # fmt: skip
    maps = extra.get("map", {})
    largest = str(max(config.map_sizes))
    entry = maps.get(largest)
    map_note = quick or ("" if largest == "10000" else f"map of {largest}")
    value = entry["start_ms"][OURS]["median_ms"] if entry else None
    checks.append(_check(
        f"{int(largest):,}-item map: start_flow (median)", "<= 200 ms", value,
        lambda v: v <= 200.0, f"{value or 0:.1f} ms", why("map"), map_note,
    ))  # fmt: skip
    chain = throughput.get("chain", {}).get("per_second", {}).get(OURS, {}).get("median")
    completion = entry["completion"]["tasks_per_second"] if entry else None
    value = completion / chain if completion and chain else None
    checks.append(_check(
        f"{int(largest):,}-item map: all tasks done at the chain's tasks/s (>= 90 % of it)",
        ">= 0.9x", value, lambda v: v >= 0.9,
        f"{completion or 0:,.0f} vs {chain or 0:,.0f} tasks/s = {value or 0:.2f}x",
        why("map") if entry is None else why("flows"), map_note,
    ))  # fmt: skip
    value = throughput.get("chain", {}).get("ours_over", {}).get(OURS_HISTORY, {}).get("median")
    value = 1.0 / value if value else None
    checks.append(_check(
        f"chain tasks/s with {config.history_runs:,} finished runs in history vs an empty database",
        ">= 0.9x", value, lambda v: v >= 0.9, f"{value or 0:.2f}x", why("history"),
        quick or ("" if config.history_runs >= 1_000_000 else "history below 1,000,000 runs"),
    ))  # fmt: skip
    memory = extra.get("memory", {})
    value = memory.get("peak_rss_mb")
    checks.append(_check(
        f"one worker at max_concurrent {config.memory_concurrency}: peak RSS (VmHWM)",
        "<= 100 MB", value, lambda v: v <= 100.0,
        f"{value or 0:.1f} MB (<= {memory.get('max_tasks_in_flight', 0)} tasks started)",
        why("memory"), quick,
    ))  # fmt: skip
    return checks


def _results(
    config: SuiteConfig,
    server: dict[str, Any],
    setup: Setup,
    measurements: list[core.Measurement],
    extra: dict[str, Any],
    elapsed: float,
) -> dict[str, Any]:
    throughput = _throughput(config, measurements)
    problems = [
        f"round {m.round} {m.workload} {m.subject}: {'; '.join(m.problems)}"
        for m in measurements
        if m.problems
    ]
    for section in ("map", "latency", "memory"):
        entries = extra.get(section, {})
        found = entries.get("problems", []) if section == "memory" else [
            p for entry in entries.values() if isinstance(entry, dict)
            for p in entry.get("problems", [])
        ]  # fmt: skip
        problems += [f"{section}: {p}" for p in found]
    loads = [m.load for m in measurements if m.load is not None]
    return {
        "benchmark": "suite",
        "server": server,
        "config": {
            "sections": config.sections,
            "rounds": config.rounds,
            "workers": config.workers,
            "max_concurrent": config.max_concurrent,
            "batch_size": config.batch_size,
            "runs": config.runs,
            "jobs": config.jobs,
            "history_runs": config.history_runs,
            "map_sizes": list(config.map_sizes),
            "map_repeats": config.map_repeats,
            "latency_runs": config.latency_runs,
            "memory_jobs": config.memory_jobs,
            "memory_concurrency": config.memory_concurrency,
            "pgbench_seconds": config.pgbench_seconds,
            "pgbench_clients": list(config.pgbench_clients),
            "peers": config.peers,
            "peers_venv": str(config.peers_venv),
            "quick": config.quick,
        },
        "systems": setup.systems,
        "unavailable": setup.unavailable,
        "throughput": throughput,
        "map": extra.get("map"),
        "latency_ms": extra.get("latency"),
        "memory": extra.get("memory"),
        "targets": _targets(config, throughput, extra, setup.unavailable),
        "load_average": {
            "min": min(loads, default=None),
            "median": core._median(loads),
            "max": max(loads, default=None),
        },
        "measurements": [m.as_dict() for m in measurements],
        "problems": problems,
        "all_ok": not problems,
        "elapsed_seconds": elapsed,
    }


def format_report(results: dict[str, Any]) -> str:
    cfg, server = results["config"], results["server"]
    rounds = cfg["rounds"]
    out = [
        f"pgflow peer suite: PostgreSQL {server['server_version']} at {server['host']}:"
        f"{server['port']}, {server['cpus']} CPUs; {rounds} round(s), systems alternating"
        + (" [QUICK smoke run: figures are not meaningful]" if cfg["quick"] else ""),
        "server settings (the suite changes none; every peer table is logged): "
        + ", ".join(f"{name} {value}" for name, value in server["settings"].items()),
        "",
        "systems:",
    ]
    for name, what in results["systems"].items():
        out.append(f"  {name:14} {what}")
    for name, reason in results["unavailable"].items():
        out.append(f"  {name:14} unavailable: {reason}")
    load = results["load_average"]
    if load["median"] is not None:
        out.append(
            f"  load average after the measurements {load['min']:.1f} .. {load['max']:.1f} on "
            f"{server['cpus']} CPUs: other tenants make single figures noisy; compare ratios"
        )

    out += ["", "throughput over the busy window (first start -> last completion), per second"]
    round_cols = [f"r{i}" for i in range(1, rounds + 1)]
    rows = [["workload", "system", *round_cols, "median", "ours / this"]]
    for workload, entry in results["throughput"].items():
        first = True
        for subject, stats in entry["per_second"].items():
            ratio = entry["ours_over"].get(subject, {}).get("median")
            rows.append([
                workload if first else "", subject, *[core._fmt(v) for v in stats["rounds"]],
                core._fmt(stats["median"]), core._fmt(ratio, 2, "x"),
            ])  # fmt: skip
            first = False
        for peer in WORKLOAD_PEERS.get(workload, ()):
            if peer in results["unavailable"]:
                rows.append(["", peer, "unavailable", *[""] * rounds, ""])
    if len(rows) > 1:
        out.extend(core._table(rows, 2))
        out.append(
            "  ratios: median of the per-round ratios of neighbouring measurements; jobs/s and "
            "tasks/s are the same for one-step work; pgbench -N: transactions/s, and its ratio "
            "is our single-step jobs/s over them"
        )
    else:
        out.append("  (no throughput section run)")

    if results["map"]:
        out += ["", "root map: start_flow ms (client, commit included; median of "
                f"{cfg['map_repeats']}) and our workers completing one run"]  # fmt: skip
        rows = [["items", "start ours ms", "start upstream ms", "done tasks/s", "busy s"]]
        for size, entry in results["map"].items():
            starts = entry["start_ms"]
            done = entry["completion"]
            rows.append([
                size, core._fmt(starts.get(OURS, {}).get("median_ms"), 1),
                core._fmt(starts.get("upstream", {}).get("median_ms"), 1),
                core._fmt(done["tasks_per_second"]), core._fmt(done["busy_seconds"], 2),
            ])  # fmt: skip
        out.extend(core._table(rows, 1))

    if results["latency_ms"]:
        out += ["", "idle latency of a 3-step chain, one at a time, one worker (ms)"]
        rows = [["measured by", "chains", "p50", "p95", "p99"]]
        labels = {"database": "database (runs.started_at -> completed_at)",
                  "client": "client (start_flow_sync returning)"}  # fmt: skip
        for source, stats in results["latency_ms"].items():
            rows.append([labels.get(source, source), str(stats["count"]),
                         *[core._fmt(stats[p], 1) for p in ("p50", "p95", "p99")]])  # fmt: skip
        out.extend(core._table(rows, 1))

    memory = results["memory"]
    if memory:
        m = memory["measurement"]
        out += [
            "",
            f"memory of one worker process at max_concurrent {memory['max_concurrent']} under "
            f"load ({memory['jobs']} jobs sleeping {memory['sleep_ms']:.0f} ms): peak RSS "
            f"(VmHWM) {core._fmt(memory['peak_rss_mb'], 1, ' MB')}, highest sampled VmRSS "
            f"{core._fmt(memory['max_sampled_rss_mb'], 1, ' MB')}, up to "
            f"{memory['max_tasks_in_flight']} of its tasks in status started at once, "
            f"{m['tasks_per_second']:,.0f} jobs/s",
        ]

    out += ["", "targets (issue #10)"]
    rows = [["target", "goal", "figure", "status"]]
    for check in results["targets"]:
        status = check["status"] + (f" ({check['note']})" if check["note"] else "")
        rows.append([check["target"], check["goal"], check["figure"], status])
    out.extend(core._table(rows, 4))

    out.append("")
    if results["problems"]:
        out.append(f"PROBLEMS ({len(results['problems'])}):")
        out += [f"  {problem}" for problem in results["problems"]]
    else:
        out.append(
            f"no problems: every run, task and job completed ({len(results['measurements'])} "
            f"throughput measurements; {results['elapsed_seconds']:.0f} s in all)"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        results = run(config)
    except core.UnavailableError as exc:
        _log(f"cannot run: {exc}")
        return 2
    report = format_report(results)
    print(report)
    if config.json_path:
        with open(config.json_path, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2, default=str)
    return 0 if results["all_ok"] else 1
