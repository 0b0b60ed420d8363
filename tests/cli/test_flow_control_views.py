"""Flow control in the CLI views: `pgflow run ID` shows skipped steps with their reason and a
cancelled run's reason and origin of a retry; `pgflow flows` shows step conditions."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from pgflow.cli._dag import format_options
from tests._helpers import run_cli


@pytest.fixture
def gated(pgflow_database_url: str) -> dict[str, Any]:
    """Flow 'gate': 'premium' needs {"plan": "pro"} (unmet: skip it and its dependents),
    'audit' is skipped when out of attempts. A free-plan run (premium and bill skipped), then
    cancelled with a reason and retried."""
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("SELECT pgflow.create_flow('gate')")
        conn.execute(
            "SELECT pgflow.add_step('gate', 'premium', required_input_pattern => %s, "
            "when_unmet => 'skip-cascade')",
            (json.dumps({"plan": "pro"}),),
        )
        conn.execute(
            "SELECT pgflow.add_step('gate', 'audit', max_attempts => 2, when_exhausted => 'skip')"
        )
        conn.execute("SELECT pgflow.add_step('gate', 'bill', ARRAY['premium'])")
        row = conn.execute("SELECT run_id FROM pgflow.start_flow('gate', '{\"plan\": \"free\"}')")
        (run_id,) = row.fetchone() or (None,)
        conn.execute("SELECT pgflow.cancel_run(%s, 'bad [b]input[/b]')", (run_id,))
        (retry_id,) = conn.execute(
            "SELECT run_id FROM pgflow.retry_run(%s)", (run_id,)
        ).fetchone() or (None,)
    return {"url": pgflow_database_url, "run": run_id, "retry": retry_id}


def test_run_shows_skip_reasons_and_the_cancellation(gated: dict[str, Any]) -> None:
    result = run_cli("run", str(gated["run"]), "-d", gated["url"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("cancelled ") and "bad [b]input[/b]" in line for line in lines)
    (premium,) = [line for line in lines if line.startswith("│ premium")]
    assert "skipped: condition_unmet" in premium
    (bill,) = [line for line in lines if line.startswith("│ bill")]
    assert "skipped: dependency_skipped" in bill
    retry = run_cli("run", str(gated["retry"]), "-d", gated["url"])
    assert f"retry of {gated['run']}" in retry.stdout


def test_run_json_has_skip_reasons_cancel_reason_and_retry_of(gated: dict[str, Any]) -> None:
    shown = json.loads(run_cli("run", str(gated["run"]), "--json", "-d", gated["url"]).stdout)
    assert (shown["run"]["status"], shown["run"]["cancel_reason"]) == (
        "cancelled",
        "bad [b]input[/b]",
    )
    assert shown["run"]["cancelled_at"] is not None
    steps = {s["step_slug"]: s for s in shown["steps"]}
    assert steps["premium"]["skip_reason"] == "condition_unmet"
    assert steps["premium"]["skipped_at"] is not None
    assert steps["premium"]["duration_seconds"] is None
    assert (steps["audit"]["skip_reason"], steps["audit"]["skipped_at"]) == (None, None)
    retry = json.loads(run_cli("run", str(gated["retry"]), "--json", "-d", gated["url"]).stdout)
    assert retry["run"]["retry_of"] == str(gated["run"])


def test_flows_show_step_conditions(gated: dict[str, Any]) -> None:
    result = run_cli("flows", "-d", gated["url"])
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert 'when={"plan":"pro"} when_unmet=skip-cascade' in rows["premium"]
    assert "max_attempts=2 when_exhausted=skip" in rows["audit"]
    assert "when" not in rows["bill"]  # no condition, default rules: nothing to say
    shown = json.loads(run_cli("flows", "gate", "--json", "-d", gated["url"]).stdout)
    premium = shown["flows"][0]["steps"][0]
    assert (premium["when"], premium["unless"], premium["when_unmet"]) == (
        {"plan": "pro"},
        None,
        "skip-cascade",
    )


def test_format_options_puts_conditions_after_the_options() -> None:
    assert format_options(
        {"unless": {"a": [1, "é"]}, "when_exhausted": "skip", "timeout": 9, "when": None}
    ) == ('timeout=9s unless={"a":[1,"é"]} when_exhausted=skip')
