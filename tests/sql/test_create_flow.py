"""create_flow: idempotent upsert of a flow plus its pgmq queue."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import Conn, Core, q, scalar


def test_defaults_and_queue(core: Core) -> None:
    row = core.create_flow("my_flow")
    assert (
        row["flow_slug"],
        row["opt_max_attempts"],
        row["opt_base_delay"],
        row["opt_timeout"],
    ) == (
        "my_flow",
        3,
        5,
        60,
    )
    queues = q(core.conn, "SELECT queue_name FROM pgmq.list_queues()")
    assert [r["queue_name"] for r in queues] == ["my_flow"]
    assert scalar(core.conn, "SELECT to_regclass('pgmq.q_my_flow') IS NOT NULL AS t")


def test_explicit_options(core: Core) -> None:
    row = core.create_flow("f", max_attempts=0, base_delay=0, timeout=1)
    assert (row["opt_max_attempts"], row["opt_base_delay"], row["opt_timeout"]) == (0, 0, 1)


def test_second_call_keeps_existing_options_and_returns_the_row(core: Core) -> None:
    first = core.create_flow("f", max_attempts=7)
    again = core.create_flow("f", max_attempts=1, base_delay=9, timeout=99)
    assert again == first
    assert scalar(core.conn, "SELECT count(*) FROM pgmq.list_queues()") == 1


def test_existing_queue_is_reused(core: Core) -> None:
    core.conn.execute("SELECT pgmq.create('f')")
    core.conn.execute("SELECT pgmq.send('f', '{\"keep\": true}')")
    core.create_flow("f")
    assert [m["message"] for m in core.queue("f")] == [{"keep": True}]


@pytest.mark.parametrize("slug", ["1flow", "run", "bad-slug", ""])
def test_invalid_slug_is_rejected_by_slug_is_valid(core: Core, slug: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="slug_is_valid"):
        core.create_flow(slug)
    assert scalar(core.conn, "SELECT count(*) FROM pgmq.list_queues()") == 0


@pytest.mark.parametrize(
    ("opts", "constraint"),
    [
        ({"max_attempts": -1}, "opt_max_attempts_is_nonnegative"),
        ({"base_delay": -1}, "opt_base_delay_is_nonnegative"),
        ({"timeout": 0}, "opt_timeout_is_positive"),
    ],
)
def test_option_checks(core: Core, opts: dict[str, int], constraint: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        core.create_flow("f", **opts)


def test_table_default_base_delay_is_one(pgflow_conn: Conn) -> None:
    pgflow_conn.execute("INSERT INTO pgflow.flows (flow_slug) VALUES ('direct')")
    assert scalar(pgflow_conn, "SELECT opt_base_delay FROM pgflow.flows") == 1
