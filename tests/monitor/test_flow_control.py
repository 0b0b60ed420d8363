"""Conditional steps in the monitor: a skipped step's reason and time in get_status, a step's
condition in flows(); both also on a core without the conditional-step columns (0.8.1)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from pgflow.monitor import AsyncMonitor, Monitor


@pytest.fixture
def gated(pgflow_database_url: str) -> dict[str, Any]:
    """Flow 'gate': 'premium' runs only for {"plan": "pro"} and skips its dependents too;
    'audit' is unconditional. One run of the free plan: premium is skipped at start."""
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("SELECT pgflow.create_flow('gate')")
        conn.execute(
            "SELECT pgflow.add_step('gate', 'premium', required_input_pattern => %s, "
            "forbidden_input_pattern => %s, when_unmet => 'skip-cascade')",
            (json.dumps({"plan": "pro"}), json.dumps({"dry_run": True})),
        )
        conn.execute("SELECT pgflow.add_step('gate', 'audit', when_exhausted => 'skip')")
        conn.execute("SELECT pgflow.add_step('gate', 'bill', ARRAY['premium'])")
        row = conn.execute("SELECT run_id FROM pgflow.start_flow('gate', '{\"plan\": \"free\"}')")
        (run_id,) = row.fetchone() or (None,)
    return {"url": pgflow_database_url, "run": run_id}


def test_a_skipped_step_has_its_reason_and_time_and_no_duration(gated: dict[str, Any]) -> None:
    with Monitor(gated["url"], max_pool_size=1) as monitor:
        found = monitor.get_status(gated["run"])
    premium, audit, bill = found.step("premium"), found.step("audit"), found.step("bill")
    assert (premium.status, premium.skip_reason) == ("skipped", "condition_unmet")
    assert premium.skipped_at is not None
    assert premium.skipped_at >= premium.created_at
    assert premium.duration is None
    assert (bill.status, bill.skip_reason) == ("skipped", "dependency_skipped")
    assert (audit.status, audit.skip_reason, audit.skipped_at) == ("started", None, None)
    shown = json.loads(json.dumps(found.as_dict()))
    skipped = {s["step_slug"]: s for s in shown["steps"]}["premium"]
    assert skipped["skip_reason"] == "condition_unmet"
    assert skipped["skipped_at"] == premium.skipped_at.isoformat()


async def test_flows_report_each_steps_condition(gated: dict[str, Any]) -> None:
    with Monitor(gated["url"], max_pool_size=1) as monitor:
        (flow,) = monitor.flows()
    conditions = {
        s.step_slug: (s.when, s.unless, s.when_unmet, s.when_exhausted, s.has_condition)
        for s in flow.steps
    }
    assert conditions == {
        "premium": ({"plan": "pro"}, {"dry_run": True}, "skip-cascade", "fail", True),
        "audit": (None, None, "skip", "skip", False),
        "bill": (None, None, "skip", "fail", False),
    }
    assert flow.as_dict()["steps"][0]["when"] == {"plan": "pro"}
    async with AsyncMonitor(gated["url"], max_pool_size=1) as async_monitor:
        assert await async_monitor.flows() == [flow]


def test_a_core_without_conditional_steps_reads_as_no_conditions(gated: dict[str, Any]) -> None:
    """Upstream 0.8.1 has none of these columns: the monitor reads the defaults and no skip."""
    with psycopg.connect(gated["url"], autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE pgflow.steps DROP COLUMN required_input_pattern CASCADE, "
            "DROP COLUMN forbidden_input_pattern CASCADE, DROP COLUMN when_unmet CASCADE, "
            "DROP COLUMN when_exhausted CASCADE"
        )
        conn.execute(
            "ALTER TABLE pgflow.step_states DROP COLUMN skip_reason CASCADE, "
            "DROP COLUMN skipped_at CASCADE"
        )
    with Monitor(gated["url"], max_pool_size=1) as monitor:
        (flow,) = monitor.flows()
        found = monitor.get_status(gated["run"])
    assert {(s.when, s.unless, s.when_unmet, s.when_exhausted) for s in flow.steps} == {
        (None, None, "skip", "fail")
    }
    assert {(s.skip_reason, s.skipped_at) for s in found.steps} == {(None, None)}
