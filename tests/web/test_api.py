"""The dashboard's JSON API against a database with real runs: status codes, shapes, filters,
pages, errors, and actions (off unless enabled)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from pgflow import Client
from pgflow.web import create_app
from pgflow.web._state import available_run_actions
from tests.web.conftest import HOSTILE_ERROR, HOSTILE_OUTPUT, demo

RUN_SUMMARY_KEYS = {
    "run_id",
    "flow_slug",
    "status",
    "started_at",
    "completed_at",
    "failed_at",
    "duration",
    "remaining_steps",
    "error",
    "cancelled_at",
    "cancel_reason",
}


def test_runs_are_listed_newest_first_with_filters(
    api: TestClient, populated: dict[str, Any]
) -> None:
    response = api.get("/api/runs")
    assert response.status_code == 200
    page = response.json()
    assert page["next_cursor"] is None
    assert [r["run_id"] for r in page["runs"]] == [
        str(populated[k]) for k in ("hostile", "failed", "completed")
    ]
    assert set(page["runs"][0]) == RUN_SUMMARY_KEYS
    assert page["runs"][0]["duration"] > 0

    failed = api.get("/api/runs", params={"status": "failed"}).json()["runs"]
    assert [(r["run_id"], r["error"]) for r in failed] == [
        (str(populated["failed"]), f"RuntimeError: {HOSTILE_ERROR}")
    ]
    assert api.get("/api/runs", params={"flow": "web_demo"}).json()["runs"] != []
    assert api.get("/api/runs", params={"flow": "no_such_flow"}).json()["runs"] == []
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.get("/api/runs", params={"since": later}).json()["runs"] == []


def test_runs_come_in_pages(api: TestClient, populated: dict[str, Any]) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/runs", params=params).json()
        assert len(page["runs"]) <= 2
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(populated[k]) for k in ("hostile", "failed", "completed")]


def test_bad_run_filters_are_refused_with_the_reason(api: TestClient) -> None:
    bad_status = api.get("/api/runs", params={"status": "sideways"})
    assert bad_status.status_code == 400
    assert "status must be one of" in bad_status.json()["detail"]
    bad_cursor = api.get("/api/runs", params={"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 400
    assert "invalid cursor" in bad_cursor.json()["detail"]
    assert api.get("/api/runs", params={"limit": 0}).status_code == 422
    assert api.get("/api/runs", params={"limit": 1001}).status_code == 422


def test_a_run_has_its_steps_with_dependencies_progress_and_tasks(
    api: TestClient, populated: dict[str, Any]
) -> None:
    response = api.get(f"/api/runs/{populated['completed']}")
    assert response.status_code == 200
    run = response.json()
    assert set(run) >= RUN_SUMMARY_KEYS
    assert run["status"] == "completed"
    assert run["input"] == {"items": 3}
    assert run["output"] == {"report": {"total": 5}}
    steps = {s["step_slug"]: s for s in run["steps"]}
    assert [s["step_slug"] for s in run["steps"]] == ["fetch", "square", "report"]
    assert steps["fetch"]["deps"] == []
    assert steps["square"]["deps"] == ["fetch"]
    assert steps["report"]["deps"] == ["fetch", "square"]
    assert (steps["square"]["tasks_done"], steps["square"]["tasks_total"]) == (3, 3)
    assert steps["square"]["output"] == [0, 1, 4]
    assert steps["report"]["attempts"] == 1
    assert [(t["step_slug"], t["task_index"]) for t in run["tasks"]] == [
        ("fetch", 0),
        ("square", 0),
        ("square", 1),
        ("square", 2),
        ("report", 0),
    ]
    failed = api.get(f"/api/runs/{populated['failed']}").json()
    report = next(s for s in failed["steps"] if s["step_slug"] == "report")
    assert (report["status"], report["error"]) == ("failed", f"RuntimeError: {HOSTILE_ERROR}")
    hostile = api.get(f"/api/runs/{populated['hostile']}").json()
    assert hostile["output"] == {"report": HOSTILE_OUTPUT}  # JSON carries it verbatim


def test_an_unknown_run_is_404_and_a_malformed_id_422(api: TestClient) -> None:
    missing = api.get(f"/api/runs/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "does not exist" in missing.json()["detail"]
    assert api.get("/api/runs/not-a-uuid").status_code == 422


def test_flows_have_their_dag_options_and_statistics(
    api: TestClient, populated: dict[str, Any]
) -> None:
    flows = api.get("/api/flows")
    assert flows.status_code == 200
    [flow] = flows.json()
    assert flow["flow_slug"] == "web_demo"
    assert flow["options"]["max_attempts"] == 1
    assert [(s["step_slug"], s["step_type"], s["deps"]) for s in flow["steps"]] == [
        ("fetch", "single", []),
        ("square", "map", ["fetch"]),
        ("report", "single", ["fetch", "square"]),
    ]
    stats = flow["stats"]
    assert (stats["runs"], stats["completed"], stats["failed"], stats["running"]) == (3, 2, 1, 0)
    assert stats["success_rate"] == 2 / 3
    assert 0 < stats["p50_duration"] <= stats["p95_duration"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.get("/api/flows", params={"since": later}).json()[0]["stats"]["runs"] == 0

    detail = api.get("/api/flows/web_demo", params={"recent": 2})
    assert detail.status_code == 200
    assert [r["run_id"] for r in detail.json()["recent_runs"]] == [
        str(populated["hostile"]),
        str(populated["failed"]),
    ]
    assert api.get("/api/flows/no_such_flow").status_code == 404


def test_workers_are_listed_with_their_state(api: TestClient) -> None:
    assert api.get("/api/workers").status_code == 200
    everyone = api.get("/api/workers", params={"include_stopped": True})
    assert everyone.status_code == 200
    [worker] = everyone.json()
    assert worker["flow_slug"] == "web_demo"
    assert worker["status"] in {"alive", "silent", "deprecated", "stopped"}
    assert worker["heartbeat_age"] >= 0


def test_metrics_count_runs_in_time_buckets(api: TestClient) -> None:
    response = api.get("/api/metrics", params={"buckets": 12})
    assert response.status_code == 200
    metrics = response.json()
    assert (metrics["total_runs"], metrics["completed"], metrics["failed"]) == (3, 2, 1)
    assert len(metrics["buckets"]) == 12
    assert sum(b["started"] for b in metrics["buckets"]) == 3
    assert sum(b["failed"] for b in metrics["buckets"]) == 1
    assert metrics["bucket_seconds"] == 2 * 3600
    assert metrics["failure_reasons"][0]["count"] == 1
    assert {s["step_slug"] for s in metrics["slowest_steps"]} == {"fetch", "square", "report"}

    one_flow = api.get("/api/metrics", params={"flow": "web_demo", "buckets": 1}).json()
    assert one_flow["buckets"][0]["started"] == 3
    now = datetime.now(UTC)
    backwards = {"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()}
    assert api.get("/api/metrics", params=backwards).status_code == 400
    assert api.get("/api/metrics", params={"buckets": 0}).status_code == 422
    assert api.get("/api/metrics", params={"flow": "no_such_flow"}).status_code == 404


def test_health_reports_database_schema_and_listener(api: TestClient) -> None:
    response = api.get("/api/health")
    assert response.status_code == 200
    health = response.json()
    assert health["database"] is True
    assert health["schema_up_to_date"] is True
    assert health["healthy"] is True
    assert health["events_listening"] is True  # started with the app, before any page asks


def test_actions_are_refused_unless_enabled(api: TestClient, populated: dict[str, Any]) -> None:
    refused = api.post("/api/flows/web_demo/runs", json={"input": {"items": 1}})
    assert refused.status_code == 403
    assert "--enable-actions" in refused.json()["detail"]
    for action in available_run_actions():
        assert api.post(f"/api/runs/{populated['completed']}/{action}").status_code == 403
    assert api.get("/api/runs", params={"status": "started"}).json()["runs"] == []


def test_starting_a_run_when_actions_are_enabled(pgflow_database_url: str) -> None:
    with Client(pgflow_database_url) as setup:  # a database of its own: this test writes
        setup.ensure_flow(demo)
    with TestClient(create_app(pgflow_database_url, enable_actions=True)) as client:
        started = client.post("/api/flows/web_demo/runs", json={"input": {"items": 2}})
        assert started.status_code == 201
        run = started.json()
        assert (run["flow_slug"], run["status"]) == ("web_demo", "started")
        assert client.get(f"/api/runs/{run['run_id']}").json()["input"] == {"items": 2}

        missing = client.post("/api/flows/no_such_flow/runs", json={"input": 1})
        assert missing.status_code == 404
        assert client.post("/api/flows/web_demo/runs", content=b"{").status_code == 422
        cross_site = client.post(
            "/api/flows/web_demo/runs",
            json={"input": {}},
            headers={"origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403
        same_site = client.post(
            "/api/flows/web_demo/runs", json={"input": {}}, headers={"origin": "http://testserver"}
        )
        assert same_site.status_code == 201


def test_cancel_retry_and_resume_when_actions_are_enabled(pgflow_database_url: str) -> None:
    assert available_run_actions() == ("cancel", "retry", "resume")
    with Client(pgflow_database_url) as setup:  # no worker: runs stay started until cancelled
        setup.ensure_flow(demo)
    with TestClient(create_app(pgflow_database_url, enable_actions=True)) as client:
        run_id = client.post("/api/flows/web_demo/runs", json={"input": {}}).json()["run_id"]
        page = client.get(f"/runs/{run_id}").text
        assert f'data-action="/api/runs/{run_id}/cancel"' in page
        assert f"/api/runs/{run_id}/retry" not in page  # only what the status allows

        cancelled = client.post(f"/api/runs/{run_id}/cancel")
        assert cancelled.status_code == 200
        assert (cancelled.json()["run_id"], cancelled.json()["status"]) == (run_id, "cancelled")
        again = client.post(f"/api/runs/{run_id}/cancel")
        assert again.status_code == 409
        assert "cancelled" in again.json()["detail"]
        page = client.get(f"/runs/{run_id}").text
        assert f'data-action="/api/runs/{run_id}/retry"' in page
        assert f"/api/runs/{run_id}/cancel" not in page

        retried = client.post(f"/api/runs/{run_id}/retry")
        assert retried.status_code == 200
        assert retried.json()["run_id"] != run_id  # a retry is a new run
        assert retried.json()["status"] == "started"
        resumed = client.post(f"/api/runs/{run_id}/resume")
        assert resumed.status_code == 200
        assert (resumed.json()["run_id"], resumed.json()["status"]) == (run_id, "started")
        assert client.post(f"/api/runs/{uuid.uuid4()}/retry").status_code == 404


def test_the_openapi_schema_is_served_and_precise(api: TestClient) -> None:
    response = api.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert {
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/flows",
        "/api/flows/{flow_slug}",
        "/api/flows/{flow_slug}/runs",
        "/api/workers",
        "/api/metrics",
        "/api/health",
        "/api/events",
        "/api/schedules",
        "/api/schedules/{name}/enable",
        "/api/schedules/{name}/disable",
    } <= set(schema["paths"])
    run_page = schema["paths"]["/api/runs"]["get"]["responses"]["200"]
    assert run_page["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RunPage"
    }
    assert not any(path.startswith("/runs") for path in schema["paths"])  # pages stay out
    # The interactive docs would load scripts from a CDN: not offered.
    assert api.get("/docs").status_code == 404
