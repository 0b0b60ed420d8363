"""claim_tasks and complete_task_and_claim: the worker's one-round-trip calls (additive)."""

from __future__ import annotations

import psycopg

from .conftest import Core, jb, q


def _claim(core: Core, flow: str, qty: int = 10) -> list[dict[str, object]]:
    return q(
        core.conn, "SELECT * FROM pgflow.claim_tasks(%s, %s, 2, %s)", flow, qty, core.worker_id
    )


def test_claim_reads_starts_and_describes_tasks(core: Core) -> None:
    core.flow("claims", [("a", []), ("b", [])], timeout=7)
    run = core.start_flow("claims", {"x": 1})
    claimed = _claim(core, "claims", qty=1)
    assert len(claimed) == 1
    (task,) = claimed
    assert task["input"] == {"run": {"x": 1}}
    assert task["attempt"] == 1
    assert task["flow_input"] == {"x": 1}
    row = core.task(run["run_id"], task["step_slug"])  # type: ignore[arg-type]
    assert row["status"] == "started"
    assert row["last_worker_id"] == core.worker_id
    (message,) = [m for m in core.queue("claims") if m["msg_id"] == task["msg_id"]]
    assert 8 < message["vt_in"] <= 9  # hidden for the step's timeout + 2 s, as start_tasks does
    assert len(_claim(core, "claims")) == 1  # the other one
    assert _claim(core, "claims") == []


def test_a_run_input_comes_once_per_run_and_claim(core: Core) -> None:
    # A root map over a large array: each task carries its element, and the whole array comes
    # once per run in one claim, with the run's first task by message id.
    core.flow("wide", [("items", [], {"step_type": "map"})])
    big = list(range(500))
    first_run = core.start_flow("wide", big)
    second_run = core.start_flow("wide", [7, 8])
    claimed = _claim(core, "wide", qty=1000)
    assert len(claimed) == 502
    for run, array in ((first_run, big), (second_run, [7, 8])):
        tasks = sorted(
            (t for t in claimed if t["run_id"] == run["run_id"]),
            key=lambda t: t["msg_id"],  # type: ignore[arg-type, return-value]
        )
        assert [t["input"] for t in tasks] == array
        assert tasks[0]["flow_input"] == array
        assert all(t["flow_input"] is None for t in tasks[1:])


def test_complete_and_claim_takes_the_next_step_in_the_same_commit(core: Core) -> None:
    core.flow("hops", [("a", []), ("b", ["a"])])
    run = core.start_flow("hops", {})
    (first,) = _claim(core, "hops")
    nxt = q(
        core.conn,
        "SELECT * FROM pgflow.complete_task_and_claim(%s, 'a', 0, %s::jsonb, 5, 2, %s)",
        run["run_id"],
        jb([1, 2]),
        core.worker_id,
    )
    assert [(t["step_slug"], t["input"], t["attempt"]) for t in nxt] == [
        ("b", {"run": {}, "a": [1, 2]}, 1)
    ]
    assert core.task(run["run_id"], "a")["status"] == "completed"
    assert core.task(run["run_id"], "b")["status"] == "started"
    # A refused completion claims nothing.
    assert (
        q(
            core.conn,
            "SELECT * FROM pgflow.complete_task_and_claim(%s, 'a', 0, '1'::jsonb, 5, 2, %s)",
            run["run_id"],
            core.worker_id,
        )
        == []
    )
    assert first["step_slug"] == "a"


def test_tasks_queued_after_the_claiming_transaction_began_are_handed_back(
    core: Core, pgflow_database_url: str
) -> None:
    core.flow("late", [("a", [])])
    with psycopg.connect(pgflow_database_url) as early:
        early.execute("SELECT now()")  # this transaction's now() is fixed from here on
        with psycopg.connect(pgflow_database_url, autocommit=True) as other:
            other.execute("SELECT pgflow.start_flow('late', '{}'::jsonb)")
        claimed = early.execute(
            "SELECT * FROM pgflow.claim_tasks('late', 10, 30, %s)", (core.worker_id,)
        ).fetchall()
        early.commit()
    assert claimed == []
    (message,) = core.queue("late")
    assert message["vt_in"] <= 0.5  # visible again at once, not after the read's 30 s
    assert len(_claim(core, "late")) == 1


def test_a_claim_starts_what_it_can_and_hands_back_what_was_queued_after_it_began(
    core: Core, pgflow_database_url: str
) -> None:
    core.flow("mixed", [("a", [])])
    before = core.start_flow("mixed", {"n": 1})
    with psycopg.connect(pgflow_database_url) as early:
        early.execute("SELECT now()")
        with psycopg.connect(pgflow_database_url, autocommit=True) as other:
            other.execute("SELECT pgflow.start_flow('mixed', '{}'::jsonb)")
        claimed = early.execute(
            "SELECT run_id FROM pgflow.claim_tasks('mixed', 10, 30, %s)", (core.worker_id,)
        ).fetchall()
        # start_tasks, given the later message by hand, leaves its task too (no error).
        later_id = max(m["msg_id"] for m in core.queue("mixed"))
        assert (
            early.execute(
                "SELECT * FROM pgflow.start_tasks('mixed', %s::bigint[], %s)",
                ([later_id], core.worker_id),
            ).fetchall()
            == []
        )
        early.commit()
    assert claimed == [(before["run_id"],)]
    later = [m for m in core.queue("mixed") if m["msg_id"] == later_id]
    assert later[0]["vt_in"] <= 0.5
    (task,) = _claim(core, "mixed")
    assert task["msg_id"] == later_id


def _claim_in_one_transaction(
    url: str, core: Core, flow: str, vt: int
) -> tuple[list[tuple[object, ...]], int]:
    """Claim with read visibility ``vt``; also how many queue rows the transaction updated."""
    with psycopg.connect(url) as conn:
        claimed = conn.execute(
            "SELECT step_slug FROM pgflow.claim_tasks(%s, 10, %s, %s) ORDER BY 1",
            (flow, vt, core.worker_id),
        ).fetchall()
        row = conn.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables "
            "WHERE schemaname = 'pgmq' AND relname = %s",
            (f"q_{flow}",),
        ).fetchone()
    assert row is not None
    return claimed, int(row[0])


def test_a_read_hiding_messages_for_their_steps_timeout_updates_each_message_once(
    core: Core, pgflow_database_url: str
) -> None:
    # Step timeouts 7 s (the flow's) and 20 s: started messages are hidden for 9 and 22 s.
    core.flow("once", [("a", []), ("b", [], {"timeout": 20})], timeout=7)
    for vt, updates in ((9, 3), (22, 3), (2, 4)):
        core.start_flow("once", {})
        claimed, updated = _claim_in_one_transaction(pgflow_database_url, core, "once", vt)
        # The read updates both messages; start sets only those the read hid for less or more.
        assert (claimed, updated) == ([("a",), ("b",)], updates), vt
        hidden = sorted(round(m["vt_in"]) for m in core.queue("once"))
        assert hidden == [9, 22], vt
        core.conn.execute("DELETE FROM pgmq.q_once")
