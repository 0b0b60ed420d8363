"""Monitoring queries on a large history: list_runs and metrics over 1,000,000 finished runs.

``python -m bench monitor [--runs 1000000] [--repeat 7] [--database-url URL] [--json PATH]
[--keep-database]``

Creates a database of its own on the server (default: the local PostgreSQL), installs the
schema and generates ``--runs`` finished runs set-based (``INSERT … SELECT generate_series``,
not through start_flow): four flows of one to three steps, spread evenly over the last 30
days, every tenth run failed by its first step with one of five errors, the others completed
with every step. Indexes are dropped during the load and rebuilt after it, then the tables
are vacuumed and analysed (autovacuum may be off). Then it times, through ``Monitor``,
``list_runs`` (first page, a page deep in the middle of the history via a cursor, with and
without filters) and ``metrics`` (last 24 hours and last 7 days, all flows and one), each
``--repeat`` times after one warm-up call, and prints the median and max ms. The target is
100 ms for each. The database is dropped at the end (``--keep-database`` keeps it, to EXPLAIN).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgflow import install
from pgflow.client._models import encode_cursor
from pgflow.monitor import Monitor, RunSummary

TARGET_MS = 100.0

#: Flow -> its steps, a chain.
FLOWS = {
    "bench_etl": ("extract", "transform", "load"),
    "bench_email": ("send",),
    "bench_report": ("gather", "render"),
    "bench_sync": ("fetch", "store"),
}
ERRORS = (
    "TimeoutError: step exceeded 60s",
    "ConnectionError: upstream refused",
    "KeyError: 'customer_id'",
    "ValueError: invalid date",
    "RuntimeError: quota exceeded",
)

_GENERATE_RUNS = """
INSERT INTO pgflow.runs (run_id, flow_slug, status, input, output, remaining_steps,
                         started_at, completed_at, failed_at)
SELECT g.run_id, g.flow_slug,
       CASE WHEN g.failed THEN 'failed' ELSE 'completed' END,
       jsonb_build_object('n', g.i),
       CASE WHEN g.failed THEN NULL ELSE '{"ok": true}'::jsonb END,
       CASE WHEN g.failed THEN g.step_count ELSE 0 END,
       g.started_at,
       CASE WHEN g.failed THEN NULL ELSE g.started_at + g.took END,
       CASE WHEN g.failed THEN g.started_at + g.took END
FROM (
    SELECT i, gen_random_uuid() AS run_id, f.flow_slug, f.step_count,
           (i / %(flow_count)s) %% 10 = 0 AS failed,
           %(now)s::timestamptz - interval '30 days' * (i::float8 / %(runs)s) AS started_at,
           make_interval(secs => 0.05 + (i %% 997) * 0.06) AS took
    FROM generate_series(1, %(runs)s) AS i
    JOIN unnest(%(flows)s::text[], %(step_counts)s::int[]) WITH ORDINALITY
        AS f(flow_slug, step_count, n) ON f.n = i %% %(flow_count)s + 1
) AS g
"""

# Steps of a completed run share its duration in equal parts; a failed run's first step failed
# after the whole duration and the steps after it were never started.
_GENERATE_STEP_STATES = """
INSERT INTO pgflow.step_states (flow_slug, run_id, step_slug, status, remaining_tasks,
                                initial_tasks, remaining_deps, error_message,
                                created_at, started_at, completed_at, failed_at)
SELECT r.flow_slug, r.run_id, s.step_slug, x.status,
       CASE x.status WHEN 'completed' THEN 0 WHEN 'failed' THEN 1 END,
       1, CASE x.status WHEN 'created' THEN 1 ELSE 0 END,
       CASE x.status WHEN 'failed' THEN (%(errors)s::text[])[
           1 + (abs(hashtext(r.run_id::text)) %% cardinality(%(errors)s::text[]))] END,
       r.started_at,
       CASE WHEN x.status <> 'created' THEN r.started_at + x.took * s.step_index END,
       CASE x.status WHEN 'completed' THEN r.started_at + x.took * (s.step_index + 1) END,
       CASE x.status WHEN 'failed' THEN r.failed_at END
FROM pgflow.runs AS r
JOIN pgflow.steps AS s ON s.flow_slug = r.flow_slug
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.status = 'completed' THEN 'completed'
                WHEN s.step_index = 0 THEN 'failed'
                ELSE 'created' END AS status,
           (coalesce(r.completed_at, r.failed_at) - r.started_at)
               / (SELECT count(*) FROM pgflow.steps AS c WHERE c.flow_slug = r.flow_slug)
               AS took
) AS x
"""


def generate(url: str, runs: int) -> dict[str, float]:
    """Load ``runs`` finished runs; returns the seconds each phase took."""
    took: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for slug, steps in FLOWS.items():
            conn.execute("SELECT pgflow.create_flow(%s)", (slug,))
            for index, step in enumerate(steps):
                deps = [steps[index - 1]] if index else []
                conn.execute("SELECT pgflow.add_step(%s, %s, %s::text[])", (slug, step, deps))
        began = time.perf_counter()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'pgflow' "
            "AND tablename IN ('runs', 'step_states') AND indexname NOT LIKE '%pkey'"
        ).fetchall()
        with conn.transaction():
            # A bulk load: no per-row foreign key checks, indexes built once afterwards.
            conn.execute("SET LOCAL session_replication_role = replica")
            for name, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX pgflow.{}").format(sql.Identifier(name)))
            now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            conn.execute(
                _GENERATE_RUNS,
                {
                    "now": now,
                    "runs": runs,
                    "flows": list(FLOWS),
                    "step_counts": [len(s) for s in FLOWS.values()],
                    "flow_count": len(FLOWS),
                },
            )
            took["insert runs"] = time.perf_counter() - began
            conn.execute(_GENERATE_STEP_STATES, {"errors": list(ERRORS)})
            took["insert step_states"] = time.perf_counter() - began - sum(took.values())
            for _, definition in indexes:
                conn.execute(definition)
            took["build indexes"] = time.perf_counter() - began - sum(took.values())
        conn.execute("VACUUM ANALYZE pgflow.runs")
        conn.execute("VACUUM ANALYZE pgflow.step_states")
        took["vacuum analyze"] = time.perf_counter() - began - sum(took.values())
        # A little live state beside the history: queued messages and two workers.
        conn.execute("SELECT pgmq.send_batch('bench_etl', ARRAY['{}', '{}', '{}']::jsonb[])")
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name) "
            "SELECT gen_random_uuid(), f, 'bench' FROM unnest(%s::text[]) AS f",
            (list(FLOWS)[:2],),
        )
    return took


def _time(call: Callable[[], Any], repeat: int) -> dict[str, Any]:
    call()  # warm-up: connection, plan, cache
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return {
        "median_ms": statistics.median(samples),
        "max_ms": max(samples),
        "samples_ms": samples,
    }


def measure(url: str, repeat: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with Monitor(url, max_pool_size=1) as monitor:
        newest = monitor.list_runs(limit=1).runs[0]
        with psycopg.connect(url) as conn:
            middle = conn.execute(
                "SELECT started_at, run_id FROM pgflow.runs ORDER BY started_at DESC, run_id DESC "
                "OFFSET (SELECT count(*) / 2 FROM pgflow.runs) LIMIT 1"
            ).fetchone()
        assert middle is not None
        deep = encode_cursor(RunSummary(middle[1], "", "", middle[0], None, None, None, 0, None))
        flow = next(iter(FLOWS))
        day = newest.started_at - timedelta(days=1)
        week_until = newest.started_at + timedelta(seconds=1)
        cases: dict[str, Callable[[], Any]] = {
            "list_runs first page": lambda: monitor.list_runs(),
            "list_runs deep page (cursor)": lambda: monitor.list_runs(cursor=deep),
            "list_runs status=failed": lambda: monitor.list_runs(status="failed"),
            "list_runs status=failed deep": lambda: monitor.list_runs(status="failed", cursor=deep),
            "list_runs status=started (none)": lambda: monitor.list_runs(status="started"),
            f"list_runs flow={flow}": lambda: monitor.list_runs(flow=flow),
            f"list_runs flow={flow} status=failed deep": lambda: monitor.list_runs(
                flow=flow, status="failed", cursor=deep
            ),
            "list_runs since/until 1 day": lambda: monitor.list_runs(
                since=day - timedelta(days=10), until=day - timedelta(days=9)
            ),
            "history": lambda: monitor.history(),
            "metrics last 24 h": lambda: monitor.metrics(),
            f"metrics last 24 h flow={flow}": lambda: monitor.metrics(flow=flow),
            "metrics last 7 days": lambda: monitor.metrics(
                since=week_until - timedelta(days=7), until=week_until
            ),
            f"metrics last 7 days flow={flow}": lambda: monitor.metrics(
                since=week_until - timedelta(days=7), until=week_until, flow=flow
            ),
        }
        for name, call in cases.items():
            results[name] = _time(call, repeat)
            print(
                f"  {name:44} median {results[name]['median_ms']:7.1f} ms   "
                f"max {results[name]['max_ms']:7.1f} ms",
                flush=True,
            )
        results["_sample"] = {"metrics last 24 h": monitor.metrics().as_dict()}
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench monitor", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PGFLOW_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", metavar="PATH", help="Also write the figures as JSON.")
    parser.add_argument(
        "--keep-database", action="store_true", help="Keep the generated database (and say so)."
    )
    args = parser.parse_args(argv)

    dbname = f"pgflow_bench_monitor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = psycopg.conninfo.make_conninfo(args.database_url, dbname=dbname)
    try:
        install(url)
        print(f"generating {args.runs:,} finished runs ...", file=sys.stderr, flush=True)
        load = generate(url, args.runs)
        print(
            "loaded in " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in load.items()),
            file=sys.stderr,
        )
        print(
            f"monitor queries on {args.runs:,} finished runs "
            f"({args.repeat} repetitions, target {TARGET_MS:.0f} ms):"
        )
        results = measure(url, args.repeat)
        timed = {name: r for name, r in results.items() if not name.startswith("_")}
        over = [name for name, r in timed.items() if r["median_ms"] > TARGET_MS]
        print("all under target" if not over else f"over target: {', '.join(over)}")
        if args.json:
            payload = {
                "database": dbname,
                "runs": args.runs,
                "load_seconds": load,
                "results": results,
            }
            Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
    finally:
        if args.keep_database:
            print(f"kept database {dbname}", file=sys.stderr)
        else:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )
    return 0
