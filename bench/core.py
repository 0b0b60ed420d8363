"""SQL-core throughput: our core vs upstream pgflow 0.8.1 vs raw pgmq, alternately, one server.

``python -m bench core [--quick] [--database-url URL] [--json PATH] ...`` (``-h`` for options).

What it does, in one invocation on one PostgreSQL server:

* creates one database per core (``ours``: ``pgflow.installer.install_on``; ``upstream``: the
  npm package ``@pgflow/core@0.8.1`` through ``pgflow.testing._upstream``) plus one for raw pgmq,
  and drops them all at the end;
* drives each core only through the public SQL API, like a real worker: N processes, each one
  connection in autocommit mode running the fixed loop ``pgmq.read_with_poll`` ->
  ``pgflow.start_tasks`` -> ``pgflow.complete_task`` per task (every call its own transaction),
  the handler returning a small JSON object;
* workloads: a 3-step chain (a -> b -> c), a fan-in (a, b, c -> d) and a single-step job. The runs
  of a measurement are all started before the workers are released, so start_flow is not timed;
* tasks/s over the busy window read from the tables' own timestamps: min(step_tasks.started_at)
  -> max(step_tasks.completed_at). Idle polling at the end is not counted;
* the cores run alternately (round 1: ours, upstream; round 2: upstream, ours; ...) because the
  commit rate of a small machine drifts by tens of percent within minutes: compare figures of
  one round, or the medians of one invocation, never figures of different invocations;
* the like-for-like ceiling, in the same rounds: raw pgmq carrying the same 3-hop chains by the
  same N processes with one acknowledgement per message: every message is sent in its own
  commit and archived in its own commit, reads batched as the pgflow workers batch them
  ("1-ack"). A second, stricter figure archives a message and sends its successor in one
  commit ("fused"), the floor of any design that commits once per task;
* the latency of ``pgflow.start_flow`` with a 10,000-element array for a root map step.

Between measurements every database is reset (pgflow state and queues truncated), vacuumed,
analysed and checkpointed, so each measurement starts from the same state.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo
from psycopg import sql
from psycopg.types.json import Jsonb

_T = TypeVar("_T")

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENV_DATABASE_URL = "PGFLOW_BENCH_DATABASE_URL"

# -- workloads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    key: str
    flow_slug: str
    #: (step slug, dependency slugs), in add_step order.
    steps: tuple[tuple[str, tuple[str, ...]], ...]
    title: str
    #: Runs of the calibration measurement (also the warm-up).
    warmup_runs: int
    #: Runs per measurement in --quick mode.
    quick_runs: int

    @property
    def tasks_per_run(self) -> int:
        return len(self.steps)


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload(
            "chain",
            "bench_chain",
            (("a", ()), ("b", ("a",)), ("c", ("b",))),
            "3-step chain a -> b -> c",
            warmup_runs=400,
            quick_runs=100,
        ),
        Workload(
            "fanin",
            "bench_fanin",
            (("a", ()), ("b", ()), ("c", ()), ("d", ("a", "b", "c"))),
            "fan-in a, b, c -> d",
            warmup_runs=300,
            quick_runs=75,
        ),
        Workload(
            "single",
            "bench_single",
            (("job", ()),),
            "single-step job",
            warmup_runs=800,
            quick_runs=250,
        ),
    )
}

MAP_FLOW = "bench_map"
MAP_STEP = "items"
RAW_QUEUE = "bench_raw"
#: Hops of a raw pgmq chain: a task of the 3-step chain is one message.
RAW_HOPS = 3

#: Core name -> what it is. Every ``ours*`` core is compared with ``upstream``.
CORE_KINDS: dict[str, str] = {
    "ours": "pgflow-py core as installed on plain PostgreSQL (events: pg_notify)",
    "ours-realtime": (
        "pgflow-py core with the realtime stub installed first "
        "(events: realtime.send as upstream's, plus pg_notify)"
    ),
    "ours-silent": "pgflow-py core with pgflow.notify_events = off (no events at all)",
    "upstream": "@pgflow/core 0.8.1 from npm (events: realtime.send into the realtime stub)",
}
BASELINE = "upstream"

#: Raw pgmq variant -> what it is.
RAW_KINDS: dict[str, str] = {
    "pgmq-1ack": (
        "raw pgmq, one ack per message: send, read (batched like the workers), "
        "archive, each in its own commit"
    ),
    "pgmq-fused": "raw pgmq, archive of a message and send of its successor in one commit",
}
PRIMARY_RAW = "pgmq-1ack"


# -- configuration ----------------------------------------------------------------------------


@dataclass
class Config:
    database_url: str
    cores: list[str]
    workloads: list[str]
    raw: list[str]
    workers: int = 4
    rounds: int = 5
    target_seconds: float = 6.0
    runs: dict[str, int] = field(default_factory=dict)
    qty: int = 10
    vt: int = 2
    max_poll_seconds: int = 1
    poll_interval_ms: int = 100
    map_size: int = 10_000
    map_repeats: int = 5
    quick: bool = False
    keep_databases: bool = False
    json_path: str | None = None
    require_upstream: bool = False
    timeout_seconds: float = 300.0
    profile: bool = False


def _parse_runs(text: str) -> dict[str, int]:
    """``3000`` (every workload) or ``chain=3000,fanin=2000,single=8000``."""
    if text.isdigit():
        return dict.fromkeys(WORKLOADS, int(text))
    found: dict[str, int] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in WORKLOADS or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"bad --runs item {part!r}")
        found[name.strip()] = int(value)
    return found


def _parse_list(choices: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}"
            )
        return items

    return parse


def parse_args(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench core",
        description="Throughput of pgflow SQL cores through the public SQL API, run alternately "
        "on one server, with raw pgmq as the ceiling. Creates and drops its own databases.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(ENV_DATABASE_URL, DEFAULT_DATABASE_URL),
        help=f"maintenance database of the server (default ${ENV_DATABASE_URL} or "
        f"{DEFAULT_DATABASE_URL}); the bench creates databases beside it",
    )
    parser.add_argument(
        "--cores",
        type=_parse_list(list(CORE_KINDS)),
        default=["ours", "upstream"],
        help="comma-separated cores, run in this order in odd rounds and reversed in even "
        f"rounds (default ours,upstream; known: {', '.join(CORE_KINDS)})",
    )
    parser.add_argument(
        "--workloads",
        type=_parse_list(list(WORKLOADS)),
        default=list(WORKLOADS),
        help="comma-separated workloads (default chain,fanin,single)",
    )
    parser.add_argument(
        "--raw",
        type=_parse_list(list(RAW_KINDS)),
        default=list(RAW_KINDS),
        help="raw pgmq ceilings to measure (default pgmq-1ack,pgmq-fused; '' for none)",
    )
    parser.add_argument("--no-raw", action="store_true", help="measure no raw pgmq ceiling")
    parser.add_argument("-n", "--workers", type=int, default=4, help="worker processes (4)")
    parser.add_argument(
        "-r",
        "--rounds",
        type=int,
        default=5,
        help="rounds (5); more, shorter measurements beat fewer, longer ones on a drifting "
        "machine, since ratios are taken between neighbouring measurements",
    )
    parser.add_argument(
        "--target-seconds",
        type=float,
        default=6.0,
        help="size each workload so a measurement takes about this long (geometric mean over "
        "the cores, from a calibration run) (6)",
    )
    parser.add_argument(
        "--runs",
        type=_parse_runs,
        default={},
        help="flow runs per measurement instead of calibrating: N or chain=N,fanin=N,single=N",
    )
    parser.add_argument("--qty", type=int, default=10, help="messages per read (10)")
    parser.add_argument("--vt", type=int, default=2, help="read visibility timeout, s (2)")
    parser.add_argument(
        "--max-poll-seconds", type=int, default=1, help="read_with_poll max_poll_seconds (1)"
    )
    parser.add_argument(
        "--poll-interval-ms", type=int, default=100, help="read_with_poll poll_interval_ms (100)"
    )
    parser.add_argument(
        "--map-size", type=int, default=10_000, help="root map array length (10000)"
    )
    parser.add_argument(
        "--map-repeats", type=int, default=5, help="timed start_flow calls per core (5)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round, small fixed sizes, 2 map starts (well under a minute)",
    )
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON here")
    parser.add_argument(
        "--require-upstream",
        action="store_true",
        help="fail instead of going on without upstream when it cannot be installed",
    )
    parser.add_argument(
        "--keep-databases", action="store_true", help="do not drop the databases at the end"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="give up on a measurement after this many seconds (300)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also report server time per SQL function and task (track_functions = all on the "
        "core databases; the timing itself slows the cores down a little)",
    )
    ns = parser.parse_args(argv)
    config = Config(
        database_url=ns.database_url,
        cores=list(dict.fromkeys(ns.cores)),
        workloads=list(dict.fromkeys(ns.workloads)),
        raw=[] if ns.no_raw else list(dict.fromkeys(ns.raw)),
        workers=ns.workers,
        rounds=ns.rounds,
        target_seconds=ns.target_seconds,
        runs=ns.runs,
        qty=ns.qty,
        vt=ns.vt,
        max_poll_seconds=ns.max_poll_seconds,
        poll_interval_ms=ns.poll_interval_ms,
        map_size=ns.map_size,
        map_repeats=ns.map_repeats,
        quick=ns.quick,
        keep_databases=ns.keep_databases,
        json_path=ns.json_path,
        require_upstream=ns.require_upstream,
        timeout_seconds=ns.timeout,
        profile=ns.profile,
    )
    if config.quick:
        config.rounds = 1
        config.map_repeats = min(config.map_repeats, 2)
        config.timeout_seconds = min(config.timeout_seconds, 40.0)
        for key, workload in WORKLOADS.items():
            config.runs.setdefault(key, workload.quick_runs)
    if config.workers < 1 or config.rounds < 1 or config.qty < 1 or config.map_repeats < 1:
        parser.error("--workers, --rounds, --qty and --map-repeats must be at least 1")
    if not config.cores:
        parser.error("--cores names no core")
    return config


# -- progress ---------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[bench core {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- databases ---------------------------------------------------------------------------------


def _url_for(admin_url: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(admin_url, dbname=dbname)


def _create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _url_for(admin_url, name)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass
class Target:
    """A database under test: a pgflow core or the raw pgmq database."""

    name: str
    description: str
    dbname: str
    url: str
    #: Queue name -> (queue table, archive table).
    tables: dict[str, tuple[str, str]] = field(default_factory=dict)
    has_realtime: bool = False
    notify_events: str = ""
    version: str = ""

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)


def _scalar(conn: psycopg.Connection[Any], query: Any, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


class UnavailableError(RuntimeError):
    """A core that cannot be installed here (for example upstream without npm)."""


def _install_core(conn: psycopg.Connection[Any], kind: str, dbname: str) -> str:
    """Install core ``kind`` into the empty database of ``conn``; return a version label."""
    if kind == "upstream":
        try:
            from pgflow.testing import _upstream
        except ImportError as exc:
            raise UnavailableError(f"pgflow.testing._upstream cannot be imported: {exc}") from exc
        try:
            _upstream.install_upstream(conn)
        except _upstream.UpstreamUnavailable as exc:
            raise UnavailableError(exc.reason) from exc
        return f"{_upstream.UPSTREAM_PACKAGE}@{_upstream.UPSTREAM_VERSION}"

    from pgflow._version import __version__
    from pgflow.installer import install_on

    if kind == "ours-realtime":
        from pgflow.testing import install_realtime_stub

        with conn.transaction():
            install_realtime_stub(conn)
    install_on(conn)
    if kind == "ours-silent":
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET pgflow.notify_events = off").format(
                sql.Identifier(dbname)
            )
        )
    return f"pgflow-py {__version__}"


def _queue_tables(conn: psycopg.Connection[Any], queue: str) -> tuple[str, str]:
    row = conn.execute(
        "SELECT pgmq.format_table_name(%s, 'q'), pgmq.format_table_name(%s, 'a')", (queue, queue)
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def _create_flows(conn: psycopg.Connection[Any], workloads: Sequence[Workload]) -> None:
    for workload in workloads:
        conn.execute("SELECT 1 FROM pgflow.create_flow(flow_slug => %s)", (workload.flow_slug,))
        for step_slug, deps in workload.steps:
            conn.execute(
                "SELECT 1 FROM pgflow.add_step(flow_slug => %s, step_slug => %s, "
                "deps_slugs => %s::text[])",
                (workload.flow_slug, step_slug, list(deps)),
            )
    conn.execute("SELECT 1 FROM pgflow.create_flow(flow_slug => %s)", (MAP_FLOW,))
    conn.execute(
        "SELECT 1 FROM pgflow.add_step(flow_slug => %s, step_slug => %s, step_type => 'map')",
        (MAP_FLOW, MAP_STEP),
    )


def setup_core(config: Config, kind: str, tag: str) -> Target:
    dbname = f"pgflow_bench_{kind.replace('-', '_')}_{tag}"
    url = _create_database(config.database_url, dbname)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            version = _install_core(conn, kind, dbname)
            if config.profile:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} SET track_functions = 'all'").format(
                        sql.Identifier(dbname)
                    )
                )
            with conn.transaction():
                _create_flows(conn, [WORKLOADS[w] for w in config.workloads])
            target = Target(kind, CORE_KINDS[kind], dbname, url, version=version)
            for slug in [WORKLOADS[w].flow_slug for w in config.workloads] + [MAP_FLOW]:
                target.tables[slug] = _queue_tables(conn, slug)
        with target.connect() as conn:  # a new session sees ALTER DATABASE settings
            target.has_realtime = bool(
                _scalar(
                    conn,
                    "SELECT to_regprocedure('realtime.send(jsonb, text, text, boolean)') "
                    "IS NOT NULL",
                )
            )
            target.notify_events = str(
                _scalar(conn, "SELECT current_setting('pgflow.notify_events', true)") or ""
            )
    except BaseException:
        if not config.keep_databases:
            _drop_database(config.database_url, dbname)
        raise
    return target


def setup_raw(config: Config, tag: str) -> Target:
    """A database with pgmq only used (installed exactly as for our core) and one queue."""
    from pgflow.installer import install_on

    dbname = f"pgflow_bench_pgmq_{tag}"
    url = _create_database(config.database_url, dbname)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            report = install_on(conn)
            conn.execute("SELECT pgmq.create(%s)", (RAW_QUEUE,))
            target = Target("pgmq", "raw pgmq", dbname, url, version=f"pgmq {report.pgmq_version}")
            target.tables[RAW_QUEUE] = _queue_tables(conn, RAW_QUEUE)
    except BaseException:
        if not config.keep_databases:
            _drop_database(config.database_url, dbname)
        raise
    return target


def _reset(conn: psycopg.Connection[Any], target: Target, *, pgflow_state: bool) -> None:
    """Back to an empty state: no runs, empty queues and archives, no recorded events."""
    tables = [sql.Identifier("pgmq", table) for pair in target.tables.values() for table in pair]
    if pgflow_state:
        tables[:0] = [
            sql.Identifier("pgflow", "step_tasks"),
            sql.Identifier("pgflow", "step_states"),
            sql.Identifier("pgflow", "runs"),
        ]
    if _scalar(conn, "SELECT to_regclass('realtime.messages') IS NOT NULL"):
        tables.append(sql.Identifier("realtime", "messages"))
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))


def _settle(conn: psycopg.Connection[Any], *, checkpoint: bool = True) -> None:
    """Same starting point for every measurement: fresh statistics, no dirty buffers."""
    conn.execute("VACUUM (ANALYZE)")
    if checkpoint:
        _checkpoint(conn)


def _checkpoint(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


# -- worker processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    kind: str  # "pgflow", "pgmq-1ack" or "pgmq-fused"
    url: str
    queue: str
    #: Tasks (messages) to finish across all workers; the workers stop when the count is reached.
    expected: int
    qty: int
    vt: int
    max_poll_seconds: int
    poll_interval_ms: int
    hops: int = RAW_HOPS


class _Calls:
    """Client-side call counts and durations of one worker."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.count[name] = self.count.get(name, 0) + 1
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def read(self, conn: psycopg.Connection[Any], args: tuple[Any, ...]) -> list[Any]:
        """pgmq.read_with_poll; reads that found nothing (idle polls) are counted apart."""
        start = time.perf_counter()
        rows = conn.execute(_READ, args).fetchall()
        self.add("read" if rows else "idle_read", time.perf_counter() - start)
        return rows


_READ = (
    "SELECT msg_id, message FROM pgmq.read_with_poll(%s::text, %s::int, %s::int, %s::int, %s::int)"
)
_START_TASKS = (
    "SELECT run_id, step_slug, task_index, input "
    "FROM pgflow.start_tasks(flow_slug => %s::text, msg_ids => %s::bigint[], worker_id => %s::uuid)"
)
_COMPLETE_TASK = (
    "SELECT 1 FROM pgflow.complete_task(run_id => %s::uuid, step_slug => %s::text, "
    "task_index => %s::int, output => %s::jsonb)"
)
_ARCHIVE = "SELECT pgmq.archive(%s::text, %s::bigint)"
_SEND = "SELECT * FROM pgmq.send(%s::text, %s::jsonb)"
_ARCHIVE_AND_SEND = (
    "SELECT pgmq.archive(%s::text, %s::bigint), (SELECT s FROM pgmq.send(%s::text, %s::jsonb) AS s)"
)


def _handler(step_slug: str, task_index: int, task_input: Any) -> Any:
    """The task body: a small JSON value that depends on the input."""
    keys = len(task_input) if isinstance(task_input, dict) else 0
    return {"step": step_slug, "i": task_index, "keys": keys}


def _pgflow_loop(
    conn: psycopg.Connection[Any], job: WorkerJob, calls: _Calls, counter: Any, stop: Any
) -> int:
    worker_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) VALUES (%s, %s, %s)",
        (worker_id, job.queue, "bench"),
    )
    done = 0
    read_args = (job.queue, job.vt, job.qty, job.max_poll_seconds, job.poll_interval_ms)
    while not stop.is_set() and counter.value < job.expected:
        msg_ids = [row[0] for row in calls.read(conn, read_args)]
        if not msg_ids:
            continue
        with calls.timed("start_tasks"):
            tasks = conn.execute(_START_TASKS, (job.queue, msg_ids, worker_id)).fetchall()
        for run_id, step_slug, task_index, task_input in tasks:
            output = _handler(step_slug, task_index, task_input)
            with calls.timed("complete_task"):
                conn.execute(_COMPLETE_TASK, (run_id, step_slug, task_index, Jsonb(output)))
            done += 1
            with counter.get_lock():
                counter.value += 1
    return done


def _pgmq_loop(
    conn: psycopg.Connection[Any], job: WorkerJob, calls: _Calls, counter: Any, stop: Any
) -> int:
    done = 0
    read_args = (job.queue, job.vt, job.qty, job.max_poll_seconds, job.poll_interval_ms)
    while not stop.is_set() and counter.value < job.expected:
        messages = calls.read(conn, read_args)
        if not messages:
            continue
        for msg_id, message in messages:
            hop = int(message["hop"])
            following = {"run": message["run"], "hop": hop + 1, "out": _handler("m", hop, message)}
            if hop + 1 >= job.hops:
                with calls.timed("archive"):
                    conn.execute(_ARCHIVE, (job.queue, msg_id))
            elif job.kind == "pgmq-fused":
                with calls.timed("archive+send"):
                    conn.execute(
                        _ARCHIVE_AND_SEND, (job.queue, msg_id, job.queue, Jsonb(following))
                    )
            else:
                # Forward first, then acknowledge: at-least-once, as a careful worker does.
                with calls.timed("send"):
                    conn.execute(_SEND, (job.queue, Jsonb(following)))
                with calls.timed("archive"):
                    conn.execute(_ARCHIVE, (job.queue, msg_id))
            done += 1
            with counter.get_lock():
                counter.value += 1
    return done


def _worker_main(
    job: WorkerJob, index: int, counter: Any, stop: Any, barrier: Any, results: Any
) -> None:
    calls = _Calls()
    report: dict[str, Any] = {"index": index, "done": 0, "error": None}
    try:
        conn = psycopg.connect(job.url, autocommit=True)
    except Exception as exc:
        barrier.abort()
        report["error"] = f"connect: {exc}"
        results.put(report)
        return
    with conn:
        try:
            if job.kind == "pgflow":
                report["done"] = _pgflow_loop(conn, job, calls, counter, _Gate(barrier, stop))
            else:
                report["done"] = _pgmq_loop(conn, job, calls, counter, _Gate(barrier, stop))
        except threading.BrokenBarrierError:
            report["error"] = "start barrier broken"
        except Exception as exc:
            report["error"] = f"{type(exc).__name__}: {exc}".strip()
            stop.set()
    report["calls"] = {
        name: {"count": count, "seconds": calls.seconds.get(name, 0.0)}
        for name, count in calls.count.items()
    }
    results.put(report)


class _Gate:
    """The stop event, whose first check waits at the start barrier (after the setup)."""

    def __init__(self, barrier: Any, stop: Any) -> None:
        self._barrier = barrier
        self._stop = stop
        self._started = False

    def is_set(self) -> bool:
        if not self._started:
            self._started = True
            self._barrier.wait(timeout=120)
        return bool(self._stop.is_set())

    def set(self) -> None:
        self._stop.set()


def run_workers(job: WorkerJob, workers: int, timeout: float) -> tuple[list[dict[str, Any]], float]:
    """Run ``workers`` processes on ``job`` until ``job.expected`` tasks are done.

    Returns the workers' reports and the wall time from their common start to the last exit.
    """
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    stop = ctx.Event()
    barrier = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=_worker_main,
            args=(job, i, counter, stop, barrier, results),
            name=f"bench-worker-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        barrier.wait(timeout=120)
        started = time.perf_counter()
    except threading.BrokenBarrierError:
        stop.set()
    deadline = started + timeout
    while len(reports) < workers:
        remaining = deadline - time.perf_counter()
        if remaining <= 0 and not stop.is_set():
            stop.set()
            deadline = time.perf_counter() + 30  # let them notice and report
            continue
        try:
            reports.append(results.get(timeout=max(0.1, min(remaining, 1.0))))
        except Exception:  # queue.Empty
            if remaining <= -30 or not any(p.is_alive() for p in processes):
                break
            continue
        if reports[-1].get("error"):
            stop.set()
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():  # only our own children, by handle
            process.terminate()
            process.join(timeout=5)
    if stop.is_set() and counter.value < job.expected and not any(r.get("error") for r in reports):
        reports.append({"index": -1, "error": f"timed out after {timeout:.0f} s", "done": 0})
    return reports, elapsed


def _merge_calls(reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    merged: dict[str, dict[str, float]] = {}
    for report in reports:
        for name, stats in (report.get("calls") or {}).items():
            into = merged.setdefault(name, {"count": 0, "seconds": 0.0})
            into["count"] += stats["count"]
            into["seconds"] += stats["seconds"]
    for stats in merged.values():
        stats["mean_ms"] = 1000.0 * stats["seconds"] / stats["count"] if stats["count"] else 0.0
    return merged


# -- measurements ------------------------------------------------------------------------------


@dataclass
class Measurement:
    subject: str
    workload: str
    round: int  # 0 for calibration
    runs: int
    expected_tasks: int
    completed_tasks: int
    completed_runs: int
    busy_seconds: float
    tasks_per_second: float
    wall_seconds: float
    problems: list[str]
    calls: dict[str, dict[str, float]]
    #: --profile: server time per SQL function, ``{name: {calls, total_ms, self_ms}}``.
    functions: dict[str, dict[str, float]] = field(default_factory=dict)
    #: 1-minute load average of the machine right after the measurement.
    load: float | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _start_runs(conn: psycopg.Connection[Any], flow_slug: str, runs: int) -> None:
    chunk = 500
    for first in range(1, runs + 1, chunk):
        last = min(runs, first + chunk - 1)
        conn.execute(
            "SELECT count(*) FROM generate_series(%s::int, %s::int) AS g, "
            "LATERAL pgflow.start_flow(flow_slug => %s::text, "
            "input => jsonb_build_object('n', g)) AS r",
            (first, last, flow_slug),
        )


def prepare_flow(target: Target, workload: Workload, runs: int) -> None:
    """Empty the database, then start ``runs`` runs of the workload (not timed)."""
    with target.connect() as conn:
        _reset(conn, target, pgflow_state=True)
        _start_runs(conn, workload.flow_slug, runs)
        _settle(conn, checkpoint=False)


def measure_flow(
    config: Config,
    target: Target,
    workload: Workload,
    runs: int,
    round_no: int,
    *,
    prepared: bool = False,
) -> Measurement:
    """One measurement: ``runs`` runs processed by the workers (prepared here unless told)."""
    expected = runs * workload.tasks_per_run
    if not prepared:
        prepare_flow(target, workload, runs)
    with target.connect() as conn:
        _checkpoint(conn)
        if config.profile:
            _reset_function_stats(conn)
    job = WorkerJob(
        "pgflow",
        target.url,
        workload.flow_slug,
        expected,
        config.qty,
        config.vt,
        config.max_poll_seconds,
        config.poll_interval_ms,
    )
    reports, wall = run_workers(job, config.workers, config.timeout_seconds)
    problems = [f"worker {r['index']}: {r['error']}" for r in reports if r.get("error")]
    functions = _function_stats(target) if config.profile else {}
    measurement = flow_outcome(target, workload, runs, round_no, wall, problems)
    measurement.calls = _merge_calls(reports)
    measurement.functions = functions
    return measurement


def flow_outcome(
    target: Target,
    workload: Workload,
    runs: int,
    round_no: int,
    wall: float,
    problems: list[str],
    expected_tasks: int | None = None,
) -> Measurement:
    """The measurement of ``runs`` runs once their workers are gone, read from the tables.

    tasks/s over the busy window (first task started -> last task completed); a problem is
    added for every run or task not completed and every message left in the queue.
    ``expected_tasks`` defaults to one task per step and run (maps have more).
    """
    expected = runs * workload.tasks_per_run if expected_tasks is None else expected_tasks
    with target.connect() as conn:
        completed_runs, all_runs = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) "
            "FROM pgflow.runs WHERE flow_slug = %s",
            (workload.flow_slug,),
        ).fetchone() or (0, 0)
        completed, all_tasks, busy = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), count(*), "
            "extract(epoch FROM max(completed_at) - min(started_at))::float8 "
            "FROM pgflow.step_tasks WHERE flow_slug = %s",
            (workload.flow_slug,),
        ).fetchone() or (0, 0, None)
        left = _scalar(
            conn,
            sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier("pgmq", target.tables[workload.flow_slug][0])
            ),
        )
    if completed_runs != runs or all_runs != runs:
        problems.append(f"{completed_runs} of {runs} runs completed ({all_runs} runs exist)")
    if completed != expected or all_tasks != expected:
        problems.append(f"{completed} of {expected} tasks completed ({all_tasks} tasks exist)")
    if left:
        problems.append(f"{left} messages left in the queue")
    busy_s = float(busy or 0.0)
    return Measurement(
        subject=target.name,
        workload=workload.key,
        round=round_no,
        runs=runs,
        expected_tasks=expected,
        completed_tasks=int(completed),
        completed_runs=int(completed_runs),
        busy_seconds=busy_s,
        tasks_per_second=completed / busy_s if busy_s > 0 else 0.0,
        wall_seconds=wall,
        problems=problems,
        calls={},
    )


def _reset_function_stats(conn: psycopg.Connection[Any]) -> None:
    """Zero the function statistics once this session's own (start_flow) ones are flushed."""
    with contextlib.suppress(psycopg.errors.UndefinedFunction):  # PostgreSQL < 15
        conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")  # a transaction end: pending statistics go out
    conn.execute("SELECT pg_stat_reset()")


def _function_stats(target: Target) -> dict[str, dict[str, float]]:
    """Function statistics of the database, once the exited workers' ones have arrived."""
    previous: dict[str, dict[str, float]] = {}
    with target.connect() as conn:
        for _ in range(20):  # a backend flushes its statistics as it exits, soon after us
            time.sleep(0.25)
            rows = conn.execute(
                "SELECT s.schemaname || '.' || s.funcname || '(' || "
                "oidvectortypes(p.proargtypes) || ')', s.calls, s.total_time, s.self_time "
                "FROM pg_stat_user_functions AS s JOIN pg_proc AS p ON p.oid = s.funcid"
            ).fetchall()
            current = {
                str(name): {"calls": int(calls), "total_ms": float(total), "self_ms": float(own)}
                for name, calls, total, own in rows
            }
            if current and current == previous:
                return current
            previous = current
            with contextlib.suppress(psycopg.errors.UndefinedFunction):
                conn.execute("SELECT pg_stat_clear_snapshot()")
    return previous


def measure_raw(
    config: Config, target: Target, kind: str, chains: int, round_no: int
) -> Measurement:
    expected = chains * RAW_HOPS
    queue_table, archive_table = target.tables[RAW_QUEUE]
    with target.connect() as conn:
        _reset(conn, target, pgflow_state=False)
        # The first hop of every chain is sent before the workers start, like start_flow's
        # messages; the other hops are sent by the workers, one commit each.
        for first in range(0, chains, 500):
            batch = [Jsonb({"run": n, "hop": 0}) for n in range(first, min(chains, first + 500))]
            conn.execute(
                "SELECT count(*) FROM pgmq.send_batch(%s::text, %s::jsonb[])", (RAW_QUEUE, batch)
            )
        _settle(conn)
    job = WorkerJob(
        kind,
        target.url,
        RAW_QUEUE,
        expected,
        config.qty,
        config.vt,
        config.max_poll_seconds,
        config.poll_interval_ms,
    )
    reports, wall = run_workers(job, config.workers, config.timeout_seconds)
    problems = [f"worker {r['index']}: {r['error']}" for r in reports if r.get("error")]
    with target.connect() as conn:
        archived, busy = conn.execute(
            sql.SQL(
                "SELECT count(*), "
                "extract(epoch FROM max(archived_at) - min(last_read_at))::float8 FROM {}"
            ).format(sql.Identifier("pgmq", archive_table))
        ).fetchone() or (0, None)
        left = _scalar(
            conn,
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("pgmq", queue_table)),
        )
    if archived != expected:
        problems.append(f"{archived} of {expected} messages archived")
    if left:
        problems.append(f"{left} messages left in the queue")
    busy_s = float(busy or 0.0)
    return Measurement(
        subject=kind,
        workload="chain",
        round=round_no,
        runs=chains,
        expected_tasks=expected,
        completed_tasks=int(archived),
        completed_runs=chains if archived == expected else 0,
        busy_seconds=busy_s,
        tasks_per_second=archived / busy_s if busy_s > 0 else 0.0,
        wall_seconds=wall,
        problems=problems,
        calls=_merge_calls(reports),
    )


def measure_map_start(config: Config, target: Target) -> tuple[float, list[str]]:
    """Milliseconds of one start_flow (client round trip, commit included) of the map flow."""
    items = Jsonb(list(range(config.map_size)))
    problems: list[str] = []
    with target.connect() as conn:
        _reset(conn, target, pgflow_state=True)
        _settle(conn)
        started = time.perf_counter()
        row = conn.execute(
            "SELECT run_id FROM pgflow.start_flow(flow_slug => %s::text, input => %s::jsonb)",
            (MAP_FLOW, items),
        ).fetchone()
        elapsed_ms = 1000.0 * (time.perf_counter() - started)
        run_id = row[0] if row else None
        tasks = _scalar(conn, "SELECT count(*) FROM pgflow.step_tasks WHERE run_id = %s", (run_id,))
        if tasks != config.map_size:
            problems.append(f"start_flow created {tasks} tasks, not {config.map_size}")
    return elapsed_ms, problems


# -- orchestration --------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _geomean(values: Sequence[float]) -> float:
    positive = [v for v in values if v > 0]
    if not positive:
        return 0.0
    return math.exp(sum(math.log(v) for v in positive) / len(positive))


def _describe(m: Measurement) -> str:
    text = (
        f"{m.workload} {m.subject}: {m.completed_tasks}/{m.expected_tasks} tasks, busy "
        f"{m.busy_seconds:.2f} s -> {m.tasks_per_second:.0f} tasks/s"
    )
    if m.load is not None:
        text += f" (load {m.load:.1f})"
    return text + (f"  PROBLEMS: {'; '.join(m.problems)}" if m.problems else "")


def _order(names: Sequence[_T], round_no: int) -> list[_T]:
    """Odd rounds in the given order, even rounds reversed."""
    return list(names) if round_no % 2 == 1 else list(reversed(names))


def _calibrate(
    config: Config, cores: dict[str, Target], raw: Target | None
) -> tuple[dict[str, int], list[Measurement]]:
    """Warm every database up and pick runs per workload so a measurement takes ~target s."""
    sizes: dict[str, int] = {}
    warmups: list[Measurement] = []
    for key in config.workloads:
        workload = WORKLOADS[key]
        rates = []
        for name in cores:
            m = measure_flow(config, cores[name], workload, workload.warmup_runs, 0)
            _log(f"calibration {_describe(m)}")
            warmups.append(m)
            rates.append(m.tasks_per_second)
        if key in config.runs:
            sizes[key] = config.runs[key]
            continue
        tasks = config.target_seconds * _geomean(rates)
        sizes[key] = max(50, round(tasks / workload.tasks_per_run / 50.0) * 50)
    if raw is not None:
        for kind in config.raw:
            m = measure_raw(config, raw, kind, WORKLOADS["chain"].warmup_runs, 0)
            _log(f"calibration {_describe(m)}")
            warmups.append(m)
    return sizes, warmups


def _server_info(config: Config) -> dict[str, Any]:
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', "
                "'fsync', 'shared_buffers', 'autovacuum', 'commit_delay', 'wal_level', "
                "'wal_sync_method', 'full_page_writes', 'wal_writer_delay', 'max_wal_size')"
            ).fetchall()
        )
        version = _scalar(conn, "SHOW server_version")
    params = psycopg.conninfo.conninfo_to_dict(config.database_url)
    return {
        "server_version": str(version),
        "host": str(params.get("host") or "local socket"),
        "port": str(params.get("port") or "5432"),
        "settings": settings,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.platform(),
    }


def run(config: Config) -> dict[str, Any]:
    tag = f"{os.getpid():x}{uuid.uuid4().hex[:4]}"
    begun = time.perf_counter()
    server = _server_info(config)
    _log(
        f"PostgreSQL {server['server_version']} at {server['host']}:{server['port']}; "
        f"{config.workers} workers; cores {', '.join(config.cores)}"
    )
    cores: dict[str, Target] = {}
    unavailable: dict[str, str] = {}
    raw: Target | None = None
    try:
        for kind in config.cores:
            _log(f"installing core {kind}")
            try:
                cores[kind] = setup_core(config, kind, tag)
            except UnavailableError as exc:
                if config.require_upstream:
                    raise
                unavailable[kind] = str(exc)
                banner = "!" * 78
                _log(f"{banner}\nCORE {kind} UNAVAILABLE, going on without it: {exc}\n{banner}")
        if not cores:
            raise UnavailableError("no core could be installed")
        if config.raw:
            _log("installing pgmq for the raw ceiling")
            raw = setup_raw(config, tag)

        if config.quick:
            sizes = {key: config.runs[key] for key in config.workloads}
            warmups: list[Measurement] = []
        else:
            _log("calibrating (also warms every database up)")
            sizes, warmups = _calibrate(config, cores, raw)
        _log("runs per measurement: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))

        measurements: list[Measurement] = []
        names = list(cores)
        raw_after = "chain" if "chain" in config.workloads else config.workloads[-1]
        raw_chains = sizes.get("chain") or config.runs.get("chain") or 1000
        sizes.setdefault("chain", raw_chains)
        for round_no in range(1, config.rounds + 1):
            for key in config.workloads:
                # Every core is prepared first, so that the measurements to compare follow
                # each other within a second or two (only a checkpoint in between).
                order = _order(names, round_no)
                for name in order:
                    prepare_flow(cores[name], WORKLOADS[key], sizes[key])
                for name in order:
                    m = measure_flow(
                        config, cores[name], WORKLOADS[key], sizes[key], round_no, prepared=True
                    )
                    m.load = os.getloadavg()[0]
                    _log(f"round {round_no}/{config.rounds} {_describe(m)}")
                    measurements.append(m)
                # The ceiling right after the chain it is compared with, same number of tasks.
                if key == raw_after and raw is not None:
                    for kind in config.raw:
                        m = measure_raw(config, raw, kind, raw_chains, round_no)
                        m.load = os.getloadavg()[0]
                        _log(f"round {round_no}/{config.rounds} {_describe(m)}")
                        measurements.append(m)

        _log(f"start_flow with a {config.map_size}-element root map, {config.map_repeats} times")
        map_times: dict[str, list[float]] = {name: [] for name in names}
        map_problems: dict[str, list[str]] = {name: [] for name in names}
        for name in names:  # untimed warm-up: plans cached, pages in memory
            measure_map_start(config, cores[name])
        for repeat in range(1, config.map_repeats + 1):
            for name in _order(names, repeat):
                elapsed, problems = measure_map_start(config, cores[name])
                map_times[name].append(elapsed)
                map_problems[name].extend(problems)
        with contextlib.ExitStack() as stack:
            for target in cores.values():
                conn = stack.enter_context(target.connect())
                _reset(conn, target, pgflow_state=True)
    finally:
        if not config.keep_databases:
            for target in [*cores.values(), *([raw] if raw else [])]:
                with contextlib.suppress(psycopg.Error):
                    _drop_database(config.database_url, target.dbname)

    return _results(
        config, server, cores, raw, unavailable, sizes, warmups, measurements, map_times,
        map_problems, time.perf_counter() - begun,
    )  # fmt: skip


# -- results -------------------------------------------------------------------------------------


def _results(
    config: Config,
    server: dict[str, Any],
    cores: dict[str, Target],
    raw: Target | None,
    unavailable: dict[str, str],
    sizes: dict[str, int],
    warmups: list[Measurement],
    measurements: list[Measurement],
    map_times: dict[str, list[float]],
    map_problems: dict[str, list[str]],
    elapsed: float,
) -> dict[str, Any]:
    def rates(subject: str, workload: str) -> list[float]:
        return [
            m.tasks_per_second
            for m in sorted(measurements, key=lambda m: m.round)
            if m.subject == subject and m.workload == workload
        ]

    workloads: dict[str, Any] = {}
    for key in config.workloads:
        per_core = {name: rates(name, key) for name in cores}
        entry: dict[str, Any] = {
            "title": WORKLOADS[key].title,
            "runs": sizes[key],
            "tasks_per_run": WORKLOADS[key].tasks_per_run,
            "tasks_per_second": {
                name: {"rounds": values, "median": _median(values)}
                for name, values in per_core.items()
            },
            "ratios": {},
        }
        if BASELINE in cores:
            for name in cores:
                if name == BASELINE:
                    continue
                per_round = [
                    a / b for a, b in zip(per_core[name], per_core[BASELINE], strict=True) if b > 0
                ]
                med_a, med_b = _median(per_core[name]), _median(per_core[BASELINE])
                entry["ratios"][f"{name}/{BASELINE}"] = {
                    "rounds": per_round,
                    "median": _median(per_round),
                    "of_medians": med_a / med_b if med_a and med_b else None,
                }
        workloads[key] = entry

    ceilings: dict[str, Any] = {}
    for kind in config.raw if raw is not None else []:
        values = rates(kind, "chain")
        entry = {
            "description": RAW_KINDS[kind],
            "chains": sizes.get("chain"),
            "messages_per_chain": RAW_HOPS,
            "messages_per_second": {"rounds": values, "median": _median(values)},
            "percent": {},
        }
        if "chain" in config.workloads:
            for name in cores:
                per_round = [
                    100.0 * a / b for a, b in zip(rates(name, "chain"), values, strict=True) if b
                ]
                entry["percent"][f"{name} chain"] = {
                    "rounds": per_round,
                    "median": _median(per_round),
                }
        ceilings[kind] = entry

    call_latency: dict[str, Any] = {}
    for m in measurements:
        per = call_latency.setdefault(m.workload, {}).setdefault(m.subject, {})
        for call, stats in m.calls.items():
            if call != "idle_read":
                per.setdefault(call, []).append(stats["mean_ms"])
    for per_workload in call_latency.values():
        for subject, per_call in per_workload.items():
            per_workload[subject] = {call: _median(values) for call, values in per_call.items()}

    loads = [m.load for m in measurements if m.load is not None]
    profile: dict[str, Any] = {}
    for m in measurements:
        if not m.functions or not m.completed_tasks:
            continue
        per = profile.setdefault(m.workload, {}).setdefault(m.subject, {})
        for function, stats in m.functions.items():
            into = per.setdefault(function, {"calls": [], "total_ms": [], "self_ms": []})
            for key in ("calls", "total_ms", "self_ms"):
                into[key].append(stats[key] / m.completed_tasks)
    for per_workload in profile.values():
        for subject, per_function in per_workload.items():
            per_workload[subject] = dict(
                sorted(
                    (
                        (function, {f"{k}_per_task": _median(v) for k, v in series.items()})
                        for function, series in per_function.items()
                    ),
                    key=lambda item: -(item[1]["total_ms_per_task"] or 0.0),
                )
            )

    return {
        "benchmark": "core",
        "server": server,
        "config": {
            "workers": config.workers,
            "rounds": config.rounds,
            "qty": config.qty,
            "vt": config.vt,
            "max_poll_seconds": config.max_poll_seconds,
            "poll_interval_ms": config.poll_interval_ms,
            "target_seconds": None if config.quick else config.target_seconds,
            "quick": config.quick,
            "map_size": config.map_size,
            "map_repeats": config.map_repeats,
            "profile": config.profile,
        },
        "cores": {
            name: {
                "description": t.description,
                "version": t.version,
                "realtime": t.has_realtime,
                "notify_events": t.notify_events or "default (on)",
            }
            for name, t in cores.items()
        },
        "raw_pgmq": {"version": raw.version} if raw is not None else None,
        "unavailable": unavailable,
        "workloads": workloads,
        "raw_ceilings": ceilings,
        "start_flow_root_map": {
            name: {
                "ms": times,
                "median_ms": _median(times),
                "problems": map_problems.get(name, []),
            }
            for name, times in map_times.items()
        },
        "call_latency_ms": call_latency,
        "load_average": {
            "min": min(loads, default=None),
            "median": _median(loads),
            "max": max(loads, default=None),
        },
        "function_profile": profile,
        "measurements": [m.as_dict() for m in measurements],
        "calibration": [m.as_dict() for m in warmups],
        "all_ok": all(m.ok for m in measurements)
        and not any(map_problems.values())
        and len(measurements) > 0,
        "elapsed_seconds": elapsed,
    }


#: Functions whose time is mostly sleeping, left out of the printed profile.
_SLEEPERS = {
    "pgmq.read_with_poll(text, integer, integer, integer, integer, jsonb)",
}


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _table(rows: list[list[str]], right_from: int) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i >= right_from else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_report(results: dict[str, Any]) -> str:
    cfg, server = results["config"], results["server"]
    rounds = cfg["rounds"]
    round_cols = [f"r{i}" for i in range(1, rounds + 1)]
    out: list[str] = []
    settings = server["settings"]
    out.append(
        f"pgflow core benchmark: PostgreSQL {server['server_version']} at {server['host']}:"
        f"{server['port']} ({server['cpus']} CPUs; synchronous_commit "
        f"{settings.get('synchronous_commit')}, fsync {settings.get('fsync')}, autovacuum "
        f"{settings.get('autovacuum')})"
    )
    out.append(
        f"{cfg['workers']} worker processes, loop read_with_poll(qty {cfg['qty']}, vt {cfg['vt']} "
        f"s, {cfg['max_poll_seconds']} s/{cfg['poll_interval_ms']} ms) -> start_tasks -> "
        f"complete_task per task, one commit per call; {rounds} round(s), cores alternating"
        + (" [QUICK smoke run: figures are not meaningful]" if cfg["quick"] else "")
    )
    for name, core in results["cores"].items():
        events = (
            f"realtime.send {'yes' if core['realtime'] else 'no'}, "
            f"pg_notify setting {core['notify_events']}"
        )
        out.append(f"  {name:14} {core['version']}: {core['description']} [{events}]")
    for name, reason in results["unavailable"].items():
        out.append(f"  {name:14} UNAVAILABLE: {reason}")
    if results["raw_pgmq"]:
        out.append(f"  {'raw pgmq':14} {results['raw_pgmq']['version']}")

    load = results["load_average"]
    if load["median"] is not None:
        out.append(
            f"  machine load average after the measurements: {load['min']:.1f} .. "
            f"{load['max']:.1f} (median {load['median']:.1f}) on {server['cpus']} CPUs; "
            "other tenants make single figures noisy, compare ratios of one round"
        )

    out.append("")
    out.append("tasks/s over the busy window (first task started -> last task completed)")
    rows = [["workload", "runs x tasks", "core", *round_cols, "median"]]
    for key, entry in results["workloads"].items():
        first = True
        for name, stats in entry["tasks_per_second"].items():
            rows.append(
                [
                    key if first else "",
                    f"{entry['runs']} x {entry['tasks_per_run']}" if first else "",
                    name,
                    *[_fmt(v) for v in stats["rounds"]],
                    _fmt(stats["median"]),
                ]
            )
            first = False
        for label, ratio in entry["ratios"].items():
            cells = [_fmt(v, 2, "x") for v in ratio["rounds"]]
            cells += [""] * (rounds - len(cells))
            rows.append(["", "", label, *cells, _fmt(ratio["median"], 2, "x")])
    out.extend(_table(rows, 3))
    if any(entry["ratios"] for entry in results["workloads"].values()):
        out.append("  ratio median = median of the per-round ratios; target: ours >= 2x upstream "
                   "for the chain and the fan-in")  # fmt: skip

    if results["raw_ceilings"]:
        out.append("")
        out.append(
            f"raw pgmq ceiling: the same chains as 3-hop messages ({RAW_HOPS} messages per chain "
            "= 1 message per chain task), same workers"
        )
        rows = [["ceiling", "subject", *round_cols, "median"]]
        for kind, entry in results["raw_ceilings"].items():
            stats = entry["messages_per_second"]
            rows.append(
                [kind, "messages/s", *[_fmt(v) for v in stats["rounds"]], _fmt(stats["median"])]
            )
            for label, pct in entry["percent"].items():
                cells = [_fmt(v, 0, "%") for v in pct["rounds"]]
                cells += [""] * (rounds - len(cells))
                rows.append(["", f"{label} as %", *cells, _fmt(pct["median"], 0, "%")])
        out.extend(_table(rows, 2))
        for kind, entry in results["raw_ceilings"].items():
            out.append(f"  {kind}: {entry['description']}")
        out.append(f"  target: ours >= 70% of {PRIMARY_RAW}")

    out.append("")
    maps = results["start_flow_root_map"]
    out.append(
        f"start_flow of a {cfg['map_size']}-element root map: ms per call, commit included "
        f"(median of {cfg['map_repeats']}; target ours <= 200 ms)"
    )
    rows = [["core", "median ms", "all calls (ms)"]]
    for name, stats in maps.items():
        note = f"  PROBLEMS: {'; '.join(stats['problems'])}" if stats["problems"] else ""
        rows.append(
            [name, _fmt(stats["median_ms"], 1), " ".join(f"{v:.1f}" for v in stats["ms"]) + note]
        )
    out.extend(_table(rows, 1))

    out.append("")
    out.append("client-side mean latency per call, ms (median over rounds)")
    calls = sorted(
        {call for per in results["call_latency_ms"].values() for c in per.values() for call in c}
    )
    rows = [["workload", "subject", *calls]]
    for workload, per in results["call_latency_ms"].items():
        for subject, stats in per.items():
            rows.append([workload, subject, *[_fmt(stats.get(c), 2) for c in calls]])
    out.extend(_table(rows, 2))

    if results["function_profile"]:
        out.append("")
        out.append(
            "server time per task by SQL function (track_functions; median over rounds; "
            "total includes callees, self does not; top 10 by total; read_with_poll left out: "
            "its time is mostly idle polling)"
        )
        rows = [["workload", "core", "function", "calls/task", "total ms", "self ms"]]
        for workload, per in results["function_profile"].items():
            for subject, functions in per.items():
                shown = [
                    (function, stats)
                    for function, stats in functions.items()
                    if function not in _SLEEPERS and (stats["calls_per_task"] or 0) >= 0.005
                ]
                for n, (function, stats) in enumerate(shown[:10]):
                    rows.append(
                        [
                            workload if n == 0 else "",
                            subject if n == 0 else "",
                            function,
                            _fmt(stats["calls_per_task"], 2),
                            _fmt(stats["total_ms_per_task"], 3),
                            _fmt(stats["self_ms_per_task"], 3),
                        ]
                    )
        out.extend(_table(rows, 3))

    bad = [m for m in results["measurements"] if not m["ok"]]
    out.append("")
    if bad:
        out.append(f"PROBLEMS in {len(bad)} measurement(s):")
        for m in bad:
            out.append(f"  round {m['round']} {m['workload']} {m['subject']}: {m['problems']}")
    else:
        out.append(
            f"all {len(results['measurements'])} measurements completed every run and task "
            f"({results['elapsed_seconds']:.0f} s in all)"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        results = run(config)
    except UnavailableError as exc:
        _log(f"cannot run: {exc}")
        return 2
    report = format_report(results)
    if config.json_path == "-":
        print(report, file=sys.stderr)
        print(json.dumps(results, indent=2, default=str))
    else:
        print(report)
        if config.json_path:
            with open(config.json_path, "w", encoding="utf-8") as handle:
                json.dump(results, handle, indent=2, default=str)
    return 0 if results["all_ok"] else 1
