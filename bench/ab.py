"""A/B of two source trees: our worker on a 3-step chain or one-step jobs, alternately, one server.

``python -m bench ab --base REV [--rounds 6] [--runs 8000] [--workload chain|job]
[--workers 2] [--database-url URL]``

A change to the engine is judged by this, not by figures of two invocations: this machine's
throughput drifts by tens of percent within minutes, so only rounds run side by side compare.

* ``A`` is the git revision ``--base`` (checked out in a temporary worktree), ``B`` the working
  tree. Each gets a database of its own, installed by its own ``pgflow`` (SQL core and all),
  and its own ``pgflow worker`` processes (``PYTHONPATH`` set to its ``src``);
* the rounds alternate (A B, B A, A B…); each starts ``--runs`` runs in bulk, analyses, starts
  the workers and measures tasks/s over the busy window (first task started -> last completed,
  from the tables' timestamps), then the CPU time the worker processes and the PostgreSQL
  server processes spent per task (from ``/proc``, the server on this host only);
* prints every round, the medians and the per-round ratios B/A.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from bench import worker as worker_bench

REPO = Path(__file__).resolve().parent.parent

JOB_FLOW = """

job = Flow("bench_job")


@job.step
async def only(run: Any) -> int:
    return 1
"""

#: workload -> (flow slug, steps as (slug, dependencies), worker target)
WORKLOADS = {
    "chain": ("bench_chain", (("a", ()), ("b", ("a",)), ("c", ("b",))), "bench_flows:chain"),
    "job": ("bench_job", (("only", ()),), "bench_flows:job"),
}


@dataclass
class Round:
    side: str
    tasks_per_second: float
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


def _create_database(admin_url: str, src: Path) -> str:
    name = f"pgflow_bench_ab_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    # The tree's own installer, in a process of its own: its SQL core, not this one's.
    subprocess.run(
        [sys.executable, "-c", "import sys; from pgflow import install; install(sys.argv[1])", url],
        env={**os.environ, "PYTHONPATH": str(src)},
        check=True,
        capture_output=True,
    )
    return url


def _drop_database(admin_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def measure(
    side: str, url: str, src: Path, module_dir: Path, workload: str, runs: int, workers: int
) -> Round:
    slug, _, target = WORKLOADS[workload]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE pgflow.step_tasks, pgflow.step_states, pgflow.runs CASCADE")
        conn.execute("SELECT pgmq.purge_queue(%s)", (slug,))
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        conn.execute(
            "SELECT count(*) FROM unnest(%s::jsonb[]) AS i(input), "
            "LATERAL pgflow.start_flow(%s, i.input)",
            (["{}"] * runs, slug),
        )
        conn.execute("ANALYZE")  # see bench.worker.throughput
    env = {**os.environ, "PYTHONPATH": f"{module_dir}{os.pathsep}{src}"}
    before = _cpu_ticks()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pgflow", "worker", target, "-d", url, "--log-level", "warning"],
            env=env,
            cwd=module_dir,
        )
        for _ in range(workers)
    ]
    try:
        finished = worker_bench.wait_for_runs(url, slug, 600, procs, interval=0.05)
        after = _cpu_ticks()
    finally:
        worker_bench._stop(procs)
    if not finished:
        raise SystemExit(f"{side}: the runs did not finish (workers exited or 600 s passed)")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), "
            "extract(epoch FROM max(completed_at) - min(started_at))::float8 "
            "FROM pgflow.step_tasks"
        ).fetchone()
    assert row is not None
    done, window = int(row[0]), float(row[1] or 0)
    worker_pids = {proc.pid for proc in procs}
    return Round(
        side,
        done / window if window else 0.0,
        _cpu_seconds(before, after, worker_pids) / done * 1e6,
        _cpu_seconds(before, after, None) / done * 1e6,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench ab", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--base", required=True, help="git revision measured as A")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side (6)")
    parser.add_argument("--runs", type=int, default=8000, help="runs per round (8000)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="chain")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PGFLOW_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args(argv)
    if min(args.rounds, args.runs, args.workers) < 1:
        parser.error("--rounds, --runs and --workers must be at least 1")

    slug, steps, _ = WORKLOADS[args.workload]
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        checkout = subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base_tree), args.base],
            capture_output=True,
            text=True,
            check=False,
        )
        if checkout.returncode != 0:
            raise SystemExit(f"cannot check out {args.base!r}: {checkout.stderr.strip()}")
        module_dir = Path(tmp) / "flows"
        module_dir.mkdir()
        (module_dir / "bench_flows.py").write_text(worker_bench.FLOWS + JOB_FLOW)
        sources = {"A": base_tree / "src", "B": REPO / "src"}
        urls: dict[str, str] = {}
        try:
            for side, src in sources.items():
                urls[side] = _create_database(args.database_url, src)
                with psycopg.connect(urls[side], autocommit=True) as conn:
                    conn.execute("SELECT pgflow.create_flow(%s)", (slug,))
                    for step, deps in steps:
                        conn.execute(
                            "SELECT pgflow.add_step(%s, %s, %s::text[])", (slug, step, list(deps))
                        )
            rounds: list[Round] = []
            for number in range(args.rounds):
                for side in "AB" if number % 2 == 0 else "BA":
                    result = measure(
                        side,
                        urls[side],
                        sources[side],
                        module_dir,
                        args.workload,
                        args.runs,
                        args.workers,
                    )
                    rounds.append(result)
                    print(
                        f"round {number + 1} {side}: {result.tasks_per_second:,.0f} tasks/s, "
                        f"CPU per task: workers {result.worker_cpu_us:.0f} us, "
                        f"PostgreSQL {result.server_cpu_us:.0f} us",
                        flush=True,
                    )
        finally:
            for url in urls.values():
                _drop_database(args.database_url, url)
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)],
                check=False,
                capture_output=True,
            )

    def column(side: str, field: str) -> list[float]:
        return [float(getattr(r, field)) for r in rounds if r.side == side]

    print(f"\nA = {args.base}, B = working tree; {args.workload}, {args.workers} workers")
    for field, label in (
        ("tasks_per_second", "tasks/s"),
        ("worker_cpu_us", "worker CPU us/task"),
        ("server_cpu_us", "PostgreSQL CPU us/task"),
    ):
        a, b = column("A", field), column("B", field)
        ratios = ", ".join(f"{y / x:.3f}" for x, y in zip(a, b, strict=True))
        print(
            f"{label:24} A {statistics.median(a):8,.0f}  B {statistics.median(b):8,.0f}  "
            f"B/A {statistics.median(b) / statistics.median(a):.3f}  (rounds: {ratios})"
        )
    return 0
