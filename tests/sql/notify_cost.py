"""Measures what the pg_notify emission costs per task (not a test; run it by hand).

    python -m tests.sql.notify_cost [--database-url URL] [--runs 300] [--rounds 4] [--procs 1,4]
        [--synchronous-commit on|off] [--listener]

Creates a scratch database (pgmq + pgflow installed), then alternates rounds with
``pgflow.notify_events`` on and off. Each round starts ``--runs`` runs of a 3-step chain
(a -> b -> c; start_flow is not timed) and lets P worker processes drain them with the worker's
loop: pgmq.read -> pgflow.start_tasks -> pgflow.complete_task per task, each call its own
transaction. It reports the mean complete_task latency and the tasks/s over the busy window, and
optionally keeps one LISTEN connection open (``--listener``), as the events room would.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
import uuid

import psycopg
import psycopg.conninfo
from psycopg import sql

from pgflow.installer import install_on

FLOW = "notify_bench"


def _worker(url: str, notify: str, sync: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    worker_id = uuid.uuid4()
    durations: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET pgflow.notify_events = {notify}")
        conn.execute(f"SET synchronous_commit = {sync}")
        conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name)"
            " VALUES (%s, %s, 'bench')",
            (worker_id, FLOW),
        )
        idle = 0
        while idle < 3:
            ids = [r[0] for r in conn.execute("SELECT msg_id FROM pgmq.read(%s, 30, 10)", (FLOW,))]
            if not ids:
                idle += 1
                time.sleep(0.05)
                continue
            idle = 0
            tasks = conn.execute(
                "SELECT run_id, step_slug, task_index FROM pgflow.start_tasks(%s, %s, %s)",
                (FLOW, ids, worker_id),
            ).fetchall()
            for run_id, step_slug, task_index in tasks:
                t0 = time.perf_counter()
                conn.execute(
                    "SELECT 1 FROM pgflow.complete_task(%s, %s, %s, '{\"ok\": true}')",
                    (run_id, step_slug, task_index),
                )
                durations.append(time.perf_counter() - t0)
    out.put(durations)


def _round(url: str, runs: int, procs: int, notify: str, sync: str) -> tuple[float, float, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE pgflow.step_tasks, pgflow.step_states, pgflow.runs CASCADE")
        conn.execute(
            sql.SQL("TRUNCATE pgmq.{}, pgmq.{}").format(
                sql.Identifier(f"q_{FLOW}"), sql.Identifier(f"a_{FLOW}")
            )
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute(f"SET pgflow.notify_events = {notify}")
        with conn.transaction():
            for _ in range(runs):
                conn.execute("SELECT pgflow.start_flow(%s, '{}')", (FLOW,))
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    workers = [mp.Process(target=_worker, args=(url, notify, sync, out)) for _ in range(procs)]
    for w in workers:
        w.start()
    durations = [d for _ in workers for d in out.get()]
    for w in workers:
        w.join()
    with psycopg.connect(url) as conn:
        busy = conn.execute(
            "SELECT extract(epoch FROM max(completed_at) - min(started_at)) FROM pgflow.step_tasks"
        ).fetchone()[0]  # type: ignore[index]
        done = conn.execute(
            "SELECT count(*) FROM pgflow.runs WHERE status = 'completed'"
        ).fetchone()[0]  # type: ignore[index]
    assert done == runs, (done, runs)
    return statistics.mean(durations) * 1e6, len(durations) / float(busy), len(durations)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--procs", default="1,4")
    parser.add_argument("--listener", action="store_true")
    # Without the commit's WAL flush the figure is the CPU cost alone, far less noisy on a
    # shared machine; with it, what a deployment sees.
    parser.add_argument("--synchronous-commit", default="on", choices=["on", "off"])
    args = parser.parse_args()

    name = f"sqlcore_scratch_notify_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(args.database_url, dbname=name)
    listener = None
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            install_on(conn)
            conn.execute("SELECT pgflow.create_flow(%s)", (FLOW,))
            conn.execute("SELECT pgflow.add_step(%s, 'a')", (FLOW,))
            conn.execute("SELECT pgflow.add_step(%s, 'b', ARRAY['a'])", (FLOW,))
            conn.execute("SELECT pgflow.add_step(%s, 'c', ARRAY['b'])", (FLOW,))
        if args.listener:
            listener = psycopg.connect(url, autocommit=True)
            listener.execute("LISTEN pgflow_events")
        for procs in (int(p) for p in args.procs.split(",")):
            results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
            for r in range(args.rounds):
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for notify in order:
                    lat, tps, _n = _round(url, args.runs, procs, notify, args.synchronous_commit)
                    results[notify].append((lat, tps))
                    if listener is not None:
                        for _ in listener.notifies(timeout=0.01):
                            pass
            for notify in ("on", "off"):
                lats = [x[0] for x in results[notify]]
                tpss = [x[1] for x in results[notify]]
                lat_rounds = ", ".join(f"{x:.0f}" for x in lats)
                tps_rounds = ", ".join(f"{x:.0f}" for x in tpss)
                print(
                    f"procs={procs} notify={notify:3}: complete_task"
                    f" {statistics.median(lats):7.0f} us (rounds {lat_rounds}),"
                    f" {statistics.median(tpss):6.0f} tasks/s (rounds {tps_rounds})"
                )
            delta = statistics.median([x[0] for x in results["on"]]) - statistics.median(
                [x[0] for x in results["off"]]
            )
            print(f"procs={procs}: NOTIFY adds {delta:.0f} us per complete_task (median of rounds)")
    finally:
        if listener is not None:
            listener.close()
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
