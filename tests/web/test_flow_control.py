"""Flow control in the dashboard: the schedules (API, page, enable/disable when actions are
on), skipped steps with their reason, a cancelled run's reason and time, the run a retry
retries, and step conditions on the flow page; everything from the database escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from pgflow import Client
from pgflow.testing import TestDatabaseServer
from pgflow.web import create_app

HOSTILE_REASON = "<script>window.__xss = 4</script> & more"
HOSTILE_PLAN = '<img src=x onerror="window.__xss = 5">'


def _gate_flow(conn: psycopg.Connection[Any]) -> None:
    """'premium' runs only for the hostile plan and skips its dependent 'bill' otherwise;
    'audit' always runs and is skipped when out of attempts."""
    conn.execute("SELECT pgflow.create_flow('gate')")
    conn.execute(
        "SELECT pgflow.add_step('gate', 'premium', required_input_pattern => %s, "
        "when_unmet => 'skip-cascade')",
        (json.dumps({"plan": HOSTILE_PLAN}),),
    )
    conn.execute("SELECT pgflow.add_step('gate', 'audit', when_exhausted => 'skip')")
    conn.execute("SELECT pgflow.add_step('gate', 'bill', ARRAY['premium'])")


@pytest.fixture(scope="module")
def controlled(
    pgflow_test_server: TestDatabaseServer, pgflow_template: str
) -> Iterator[dict[str, Any]]:
    """A free-plan run (premium and bill skipped) cancelled with a hostile reason, its retry,
    and two schedules: 'nightly' (enabled, overdue) and 'weekly' (disabled). No worker."""
    name = pgflow_test_server.create_database(template=pgflow_template)
    url = pgflow_test_server.url_for(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            _gate_flow(conn)
        with Client(url, listen=False) as client:
            run = client.start_flow("gate", {"plan": "free"}).run_id
            client.cancel_run(run, HOSTILE_REASON)
            retry = client.retry_run(run).run_id
            client.schedule("gate", "0 3 * * *", name="nightly", timezone="Europe/Paris")
            client.schedule("gate", "0 4 * * 1", name="weekly", enabled=False)
        with psycopg.connect(url, autocommit=True) as conn:
            # As if no worker had served the flow for two days: an occurrence is due.
            conn.execute(
                "UPDATE pgflow.schedules SET active_since = now() - interval '2 days' "
                "WHERE schedule_name = 'nightly'"
            )
        yield {"url": url, "run": run, "retry": retry}
    finally:
        pgflow_test_server.drop_database(name)


@pytest.fixture
def dashboard(controlled: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(controlled["url"])) as client:
        yield client


def test_schedules_are_listed_by_the_api(dashboard: TestClient) -> None:
    response = dashboard.get("/api/schedules")
    assert response.status_code == 200
    nightly, weekly = response.json()
    assert set(nightly) == {
        "name",
        "flow_slug",
        "cron",
        "timezone",
        "input",
        "enabled",
        "max_catch_up",
        "created_at",
        "updated_at",
        "last_occurrence_at",
        "next_occurrence_at",
        "overdue_since",
    }
    assert (nightly["name"], nightly["flow_slug"], nightly["cron"], nightly["timezone"]) == (
        "nightly",
        "gate",
        "0 3 * * *",
        "Europe/Paris",
    )
    assert nightly["enabled"] is True
    assert nightly["overdue_since"] is not None
    assert nightly["last_occurrence_at"] is None
    assert (weekly["name"], weekly["enabled"], weekly["next_occurrence_at"]) == (
        "weekly",
        False,
        None,
    )


def test_the_schedules_page_is_in_the_nav_and_read_only_by_default(
    dashboard: TestClient,
) -> None:
    assert 'href="/schedules"' in dashboard.get("/").text
    html = dashboard.get("/schedules").text
    assert '<a href="/schedules" aria-current=page>Schedules</a>' in html
    assert '<tr data-schedule="nightly">' in html
    assert 'href="/flows/gate"' in html
    assert "0 3 * * *" in html
    assert "Europe/Paris" in html
    assert '<span class="overdue">overdue since <time' in html
    assert "data-schedule-action" not in html
    refused = dashboard.post("/api/schedules/nightly/disable")
    assert refused.status_code == 403
    assert "--enable-actions" in refused.json()["detail"]


def test_enable_and_disable_when_actions_are_enabled(pgflow_database_url: str) -> None:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:  # this test writes
        _gate_flow(conn)
    with Client(pgflow_database_url, listen=False) as setup:
        setup.schedule("gate", "*/5 * * * *", name="often")
    with TestClient(create_app(pgflow_database_url, enable_actions=True)) as client:
        page = client.get("/schedules").text
        assert 'data-schedule-action="/api/schedules/often/disable">Disable</button>' in page
        disabled = client.post("/api/schedules/often/disable")
        assert disabled.status_code == 200
        assert (disabled.json()["enabled"], disabled.json()["next_occurrence_at"]) == (False, None)
        page = client.get("/schedules").text
        assert 'data-schedule-action="/api/schedules/often/enable">Enable</button>' in page
        enabled = client.post("/api/schedules/often/enable")
        assert enabled.status_code == 200
        assert enabled.json()["enabled"] is True
        assert enabled.json()["next_occurrence_at"] is not None
        missing = client.post("/api/schedules/nope/enable")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "schedule 'nope' does not exist"
        assert client.post("/api/schedules/not%20a%20name/enable").status_code == 422
        cross_site = client.post(
            "/api/schedules/often/disable", headers={"origin": "https://evil.example"}
        )
        assert cross_site.status_code == 403
        assert client.get("/api/schedules").json()[0]["enabled"] is True  # refused: unchanged


def test_a_core_without_schedules_has_none(pgflow_database_url: str) -> None:
    with psycopg.connect(pgflow_database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE pgflow.schedules CASCADE")
    with TestClient(create_app(pgflow_database_url, enable_actions=True)) as client:
        assert client.get("/api/schedules").json() == []
        assert "No schedules." in client.get("/schedules").text
        assert client.post("/api/schedules/nightly/enable").status_code == 404


def test_a_run_has_its_skip_reasons_cancellation_and_origin(
    dashboard: TestClient, controlled: dict[str, Any]
) -> None:
    run = dashboard.get(f"/api/runs/{controlled['run']}").json()
    assert (run["status"], run["cancel_reason"]) == ("cancelled", HOSTILE_REASON)
    assert run["cancelled_at"] is not None
    assert run["retry_of"] is None
    steps = {s["step_slug"]: s for s in run["steps"]}
    assert (steps["premium"]["status"], steps["premium"]["skip_reason"]) == (
        "skipped",
        "condition_unmet",
    )
    assert steps["premium"]["skipped_at"] is not None
    assert steps["bill"]["skip_reason"] == "dependency_skipped"
    assert steps["audit"]["skip_reason"] is None
    listed = dashboard.get("/api/runs", params={"status": "cancelled"}).json()["runs"]
    assert [(r["run_id"], r["cancel_reason"]) for r in listed] == [
        (str(controlled["run"]), HOSTILE_REASON)
    ]
    retry = dashboard.get(f"/api/runs/{controlled['retry']}").json()
    assert retry["retry_of"] == str(controlled["run"])


def test_the_run_page_shows_skipped_steps_and_the_cancellation_escaped(
    dashboard: TestClient, controlled: dict[str, Any]
) -> None:
    html = dashboard.get(f"/runs/{controlled['run']}").text
    assert 'class="dag-node status-skipped" data-step="premium"' in html
    assert "skipped · condition_unmet" in html
    assert "<dt>skipped</dt><dd>its condition was not met</dd>" in html
    assert "<dt>skipped</dt><dd>a step it depends on was skipped</dd>" in html
    assert "<dt>Cancelled</dt><dd><time" in html
    assert (
        '<dd id="cancel-reason">&lt;script&gt;window.__xss = 4&lt;/script&gt; &amp; more</dd>'
        in html
    )
    assert "<script>window" not in html
    retry = dashboard.get(f"/runs/{controlled['retry']}").text
    assert f'<dt>Retry of</dt><dd><a class="mono" href="/runs/{controlled["run"]}">' in retry
    assert 'id="cancel-reason"' not in retry


def test_the_flow_page_shows_step_conditions_escaped(dashboard: TestClient) -> None:
    (flow,) = dashboard.get("/api/flows").json()
    steps = {s["step_slug"]: s for s in flow["steps"]}
    assert steps["premium"]["when"] == {"plan": HOSTILE_PLAN}
    assert (steps["premium"]["unless"], steps["premium"]["when_unmet"]) == (None, "skip-cascade")
    assert steps["audit"]["when_exhausted"] == "skip"
    html = dashboard.get("/flows/gate").text
    assert "<th scope=col>Condition</th>" in html
    assert (
        '<span class="condition">when {&quot;plan&quot;: &quot;&lt;img src=x onerror=\\&quot;'
        "window.__xss = 5\\&quot;&gt;&quot;}; if unmet: skip-cascade</span>"
    ) in html
    assert '<span class="condition">if out of attempts: skip</span>' in html
    assert "<img" not in html
