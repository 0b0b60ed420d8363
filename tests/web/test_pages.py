"""The HTML pages: what they show, that everything from the database is escaped, that they
work mounted under a prefix, and their errors."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from pgflow.web import create_app


def test_runs_page_lists_runs_with_filters(api: TestClient, populated: dict[str, Any]) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for key in ("completed", "failed", "hostile"):
        assert f'href="/runs/{populated[key]}"' in html
    assert '<select name="status">' in html
    assert '<option value="web_demo">' in html
    assert "data-live-src=" in html
    assert "<time datetime=" in html  # relative times, kept current by the script
    only_failed = api.get("/", params={"status": "failed"}).text
    assert str(populated["failed"]) in only_failed
    assert str(populated["completed"]) not in only_failed


def test_runs_page_pages_and_searches(api: TestClient, populated: dict[str, Any]) -> None:
    first = api.get("/fragments/runs").text
    assert first.count("<tr data-run=") == 3
    found = api.get("/", params={"q": str(populated["failed"])}, follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"] == f"/runs/{populated['failed']}"
    not_an_id = api.get("/", params={"q": "<b>nope</b>"})
    assert "Not a run id (a UUID): &lt;b&gt;nope&lt;/b&gt;" in not_an_id.text


def test_older_pages_are_not_live_and_link_back_to_the_newest(
    api: TestClient, populated: dict[str, Any]
) -> None:
    cursor = api.get("/api/runs", params={"limit": 1, "status": "completed"}).json()["next_cursor"]
    html = api.get("/", params={"cursor": cursor, "status": "completed"}).text
    assert str(populated["completed"]) in html
    assert str(populated["hostile"]) not in html  # it was on the first page
    assert 'href="/?status=completed">← Newest runs' in html
    assert "data-live-src" not in html


def test_a_bad_filter_is_a_400_page_naming_it(api: TestClient) -> None:
    response = api.get("/", params={"status": "<i>odd</i>"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "status must be one of" in response.text
    assert "<i>odd</i>" not in response.text


def test_run_page_draws_the_dag_and_the_timeline(
    api: TestClient, populated: dict[str, Any]
) -> None:
    html = api.get(f"/runs/{populated['completed']}").text
    assert '<svg class="dag"' in html
    assert html.count('class="dag-node status-completed') == 3
    assert 'class="dag-node status-completed dag-map" data-step="square"' in html
    assert "completed · 3/3" in html  # a map step shows done/total
    assert html.count("dag-edge") == 3  # fetch→square, fetch→report, square→report
    assert '<svg class="gantt"' in html
    assert html.count('class="gantt-bar status-completed"') == 3
    assert 'id="step-square"' in html
    assert 'data-status="completed"' in html


def test_a_failed_run_shows_its_error_escaped(api: TestClient, populated: dict[str, Any]) -> None:
    html = api.get(f"/runs/{populated['failed']}").text
    assert 'class="dag-node status-failed" data-step="report"' in html
    escaped = "RuntimeError: boom &lt;b&gt;bold&lt;/b&gt; &lt;script&gt;window.__xss = 3"
    assert f'<pre class="error" role="alert">{escaped}' in html
    assert "<b>bold</b>" not in html


def test_hostile_step_output_is_text_not_markup(api: TestClient, populated: dict[str, Any]) -> None:
    for path in (f"/runs/{populated['hostile']}", f"/fragments/runs/{populated['hostile']}"):
        html = api.get(path).text
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=" in html
        # The only script element is the dashboard's own, loaded from its static files.
        assert re.findall(r"<script[^>]*>", html) == (
            ['<script src="/static/dashboard.js" defer>'] if path.startswith("/runs") else []
        )
        assert "<img" not in html


def test_unknown_and_malformed_runs_are_404_pages(api: TestClient) -> None:
    for path in (f"/runs/{uuid.uuid4()}", "/runs/not-a-uuid", "/fragments/runs/nope"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
    assert api.get("/flows/no_such_flow").status_code == 404


def test_flow_workers_and_metrics_pages(api: TestClient, populated: dict[str, Any]) -> None:
    flows = api.get("/flows").text
    assert 'href="/flows/web_demo"' in flows
    assert "66.7 %" in flows  # two of three runs completed
    flow = api.get("/flows/web_demo").text
    assert '<svg class="dag"' in flow
    assert flow.count('class="dag-node status-defined') == 3
    assert str(populated["hostile"]) in flow  # recent runs
    assert "Start a run" not in flow  # actions are off
    workers = api.get("/workers", params={"include_stopped": "true"}).text
    assert "web_demo" in workers
    metrics = api.get("/metrics").text
    assert metrics.count('<figure class="chart">') == 3
    assert "Most frequent errors" in metrics
    assert api.get("/static/dashboard.css").status_code == 200


def test_actions_appear_on_pages_only_when_enabled(populated: dict[str, Any]) -> None:
    with TestClient(create_app(populated["url"], enable_actions=True)) as client:
        assert 'data-start="/api/flows/web_demo/runs"' in client.get("/flows/web_demo").text


def test_mounted_under_a_prefix_every_link_keeps_it(populated: dict[str, Any]) -> None:
    outer = FastAPI()
    dashboard = create_app(populated["url"])
    outer.mount("/ops/pgflow", dashboard)
    with TestClient(outer) as client:
        html = client.get("/ops/pgflow/").text
        assert f'href="/ops/pgflow/runs/{populated["completed"]}"' in html
        assert 'src="/ops/pgflow/static/dashboard.js"' in html
        assert 'data-base="/ops/pgflow"' in html
        assert client.get("/ops/pgflow/static/dashboard.js").status_code == 200
        assert client.get("/ops/pgflow/api/runs").json()["runs"]
        assert client.get(f"/ops/pgflow/runs/{uuid.uuid4()}").status_code == 404
        # A mounted app gets no lifespan of its own: its owner closes it.
        client.portal.call(dashboard.state.dashboard.close)
