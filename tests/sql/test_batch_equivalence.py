"""complete_tasks_and_claim's set-based batch against complete_task, one call per completion.

Two databases of our core play the same random scenario: flows with chains, fan-ins, maps
(empty ones too), conditions and retries; runs; rounds of claiming every visible task, failing
some, then completing a random selection with random outputs, plus stray completions
(repeated, of finished or queued tasks, of unknown tasks, of non-arrays feeding a map). One
database applies each round's completions one by one with complete_task, in the order the
batch function documents (run, step, task index, position); the other sends them as one batch.
After every round both must show the same runs, step states, tasks, queue and archive, and the
same events (as a multiset: the batch documents how their order differs).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from itertools import count
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from pgflow.testing import TestDatabaseServer, install_realtime_stub

Conn = psycopg.Connection[Any]
WORKER = uuid.UUID("00000000-0000-4000-8000-00000000beef")
_flow_numbers = count(1)

outputs = st.one_of(
    st.lists(st.integers(0, 9), max_size=3),
    st.lists(st.integers(0, 9), max_size=3),
    st.none(),
    st.integers(0, 9),
    st.fixed_dictionaries({"v": st.integers(0, 9)}),
)


@st.composite
def flow_specs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Steps as add_step keyword arguments; conditions only on run input (no root map then)."""
    size = draw(st.integers(1, 5))
    steps: list[dict[str, Any]] = []
    root_map = False
    for i in range(size):
        slug = f"s{i}"
        earlier = [s["step_slug"] for s in steps]
        step_type = draw(st.sampled_from(["single", "single", "map"]))
        if step_type == "map":
            deps = draw(st.lists(st.sampled_from(earlier), max_size=1)) if earlier else []
            root_map = root_map or not deps
        elif earlier:
            deps = draw(st.lists(st.sampled_from(earlier), unique=True, min_size=1, max_size=3))
        else:
            deps = []
        step: dict[str, Any] = {
            "step_slug": slug,
            "deps_slugs": deps,
            "step_type": step_type,
            "max_attempts": draw(st.integers(1, 2)),
            "base_delay": 0,
        }
        steps.append(step)
    if not root_map:
        for step in steps:
            if draw(st.integers(0, 3)) == 0:
                step["required_input_pattern"] = json.dumps({"run": {"go": True}})
                step["when_unmet"] = draw(st.sampled_from(["skip", "skip-cascade", "fail"]))
    for step in steps:
        step["root_map"] = root_map
    return steps


class Side:
    def __init__(self, url: str) -> None:
        self.conn: Conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        install_realtime_stub(self.conn)  # type: ignore[arg-type]
        self.conn.execute(
            "INSERT INTO pgflow.workers (worker_id, queue_name, function_name)"
            " VALUES (%s, 'batch', 'tests') ON CONFLICT DO NOTHING",
            (WORKER,),
        )

    def q(self, query: str, *params: Any) -> list[dict[str, Any]]:
        cur = self.conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []

    def picture(self, flow: str) -> dict[str, Any]:
        """Everything observable, without what differs between two databases by nature
        (timestamps beyond their presence, message ids beyond their presence)."""
        runs = self.q(
            "SELECT run_id, status, remaining_steps, output, completed_at IS NOT NULL AS c,"
            " failed_at IS NOT NULL AS f FROM pgflow.runs WHERE flow_slug = %s ORDER BY run_id",
            flow,
        )
        states = self.q(
            "SELECT run_id, step_slug, status, remaining_tasks, remaining_deps, initial_tasks,"
            " error_message, skip_reason, started_at IS NOT NULL AS s,"
            " completed_at IS NOT NULL AS c, failed_at IS NOT NULL AS f,"
            " skipped_at IS NOT NULL AS k"
            " FROM pgflow.step_states WHERE flow_slug = %s ORDER BY run_id, step_slug",
            flow,
        )
        tasks = self.q(
            "SELECT run_id, step_slug, task_index, status, attempts_count, output, error_message,"
            " message_id IS NOT NULL AS m, completed_at IS NOT NULL AS c,"
            " failed_at IS NOT NULL AS f"
            " FROM pgflow.step_tasks WHERE flow_slug = %s"
            " ORDER BY run_id, step_slug, task_index",
            flow,
        )
        queue = sorted(
            json.dumps(r["message"], sort_keys=True)
            for r in self.q(f"SELECT message FROM pgmq.q_{flow}")
        )
        archive = sorted(
            json.dumps(r["message"], sort_keys=True)
            for r in self.q(f"SELECT message FROM pgmq.a_{flow}")
        )
        return {
            "runs": runs,
            "states": states,
            "tasks": tasks,
            "queue": queue,
            "archive": archive,
            "events": self.events(),
        }

    def events(self) -> list[str]:
        rows = self.q("SELECT event, topic, payload FROM realtime.messages")
        out = []
        for r in rows:
            payload = {
                k: ("<ts>" if k.endswith("_at") and v is not None else v)
                for k, v in r["payload"].items()
                if k != "id"  # the realtime stub's random message id
            }
            out.append(json.dumps([r["event"], r["topic"], payload], sort_keys=True))
        return sorted(out)


@pytest.fixture(scope="module")
def sides(pgflow_test_server: TestDatabaseServer, pgflow_template: str) -> Iterator[list[Side]]:
    names = [pgflow_test_server.create_database(template=pgflow_template, label="eq") for _ in "ab"]
    opened = [Side(pgflow_test_server.url_for(n)) for n in names]
    try:
        yield opened
    finally:
        for side in opened:
            side.conn.close()
        for name in names:
            pgflow_test_server.drop_database(name)


def _claim(side: Side, flow: str) -> list[dict[str, Any]]:
    return side.q(
        "SELECT run_id, step_slug, task_index FROM pgflow.claim_tasks(%s, 1000, 30, %s)"
        " ORDER BY run_id, step_slug, task_index",
        flow,
        WORKER,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=flow_specs(), data=st.data())
def test_a_batch_reaches_what_one_call_per_completion_reaches(
    sides: list[Side], spec: list[dict[str, Any]], data: st.DataObject
) -> None:
    one_by_one, batched = sides
    number = next(_flow_numbers)
    flow = f"eq{number}"
    for side in sides:
        side.conn.execute("TRUNCATE realtime.messages")
        side.q("SELECT pgflow.create_flow(%s)", flow)
        for step in spec:
            options = {k: v for k, v in step.items() if k not in {"step_slug", "root_map"}}
            named = "".join(f", {k} => %s" for k in options)
            side.q(
                f"SELECT pgflow.add_step(%s, %s{named})", flow, step["step_slug"], *options.values()
            )
    root_map = spec[0]["root_map"]
    runs = data.draw(st.integers(1, 4), label="runs")
    for i in range(runs):
        run_input: Any = (
            data.draw(st.lists(st.integers(0, 9), max_size=3), label="input")
            if root_map
            else {"go": data.draw(st.booleans(), label="go")}
        )
        run_id = uuid.UUID(int=(number << 32) + i + 1)
        for side in sides:
            side.q(
                "SELECT pgflow.start_flow(%s, %s::jsonb, %s)", flow, json.dumps(run_input), run_id
            )

    finished: list[dict[str, Any]] = []
    for _round in range(6):
        claimed = [_claim(side, flow) for side in sides]
        assert claimed[0] == claimed[1]
        tasks = claimed[0]
        if not tasks:
            break
        completions: list[dict[str, Any]] = []
        for task in tasks:
            fate = data.draw(st.sampled_from(["complete", "complete", "complete", "fail", "keep"]))
            if fate == "fail":
                for side in sides:
                    side.q(
                        "SELECT pgflow.fail_task(%s, %s, %s, 'boom')",
                        task["run_id"],
                        task["step_slug"],
                        task["task_index"],
                    )
            elif fate == "complete":
                completions.append({**task, "output": data.draw(outputs, label="output")})
        # Strays: a repeat, a finished task, an unknown index.
        if completions and data.draw(st.booleans(), label="repeat"):
            completions.append(dict(data.draw(st.sampled_from(completions), label="repeated")))
        if finished and data.draw(st.booleans(), label="late"):
            late = data.draw(st.sampled_from(finished), label="late one")
            completions.append({**late, "output": data.draw(outputs, label="late output")})
        if tasks and data.draw(st.booleans(), label="unknown"):
            completions.append({**tasks[0], "task_index": 99, "output": 1})
        completions = data.draw(st.permutations(completions), label="order")

        positioned = sorted(
            enumerate(completions),
            key=lambda pc: (str(pc[1]["run_id"]), pc[1]["step_slug"], pc[1]["task_index"], pc[0]),
        )
        # uuid order in PostgreSQL is byte order, which for these ids is str order.
        for _, c in positioned:
            one_by_one.q(
                "SELECT pgflow.complete_task(%s, %s, %s, %s::jsonb)",
                c["run_id"],
                c["step_slug"],
                c["task_index"],
                json.dumps(c["output"]),
            )
        batch = [
            {
                "run_id": str(c["run_id"]),
                "step_slug": c["step_slug"],
                "task_index": c["task_index"],
                "output": c["output"],
            }
            for c in completions
        ]
        batched.q(
            "SELECT * FROM pgflow.complete_tasks_and_claim(%s::jsonb, 0, 30, %s, NULL)",
            json.dumps(batch),
            WORKER,
        )
        finished.extend(
            {k: c[k] for k in ("run_id", "step_slug", "task_index")} for c in completions
        )

        expected, got = one_by_one.picture(flow), batched.picture(flow)
        for part in expected:
            assert got[part] == expected[part], part
