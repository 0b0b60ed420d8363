"""End to end in a real headless Chromium (the system's; never downloaded): pages update live
while a real worker runs the flow, drawings render, errors show, hostile output stays text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pgflow import Client
from pgflow.testing import TestDatabaseServer
from pgflow.testing._worker import running_worker
from pgflow.web import create_app
from pgflow.web._server import serving
from tests.web.conftest import HOSTILE_ERROR, HOSTILE_OUTPUT, demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(pgflow_test_server: TestDatabaseServer, pgflow_template: str) -> Iterator[dict[str, Any]]:
    """A database, a worker for the demo flow, and the dashboard served on a free port."""
    name = pgflow_test_server.create_database(template=pgflow_template)
    url = pgflow_test_server.url_for(name)
    try:
        with Client(url) as client:
            client.ensure_flow(demo)
            with running_worker([demo], url), serving(create_app(url)) as base:
                yield {"base": base, "client": client, "url": url}
    finally:
        pgflow_test_server.drop_database(name)


@pytest.fixture
def page(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        opened = browser.new_page()
        problems: list[str] = []
        opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        opened.on("pageerror", lambda e: problems.append(str(e)))
        yield opened
        browser.close()
    # A Content-Security-Policy violation or a script error shows up here.
    assert problems == []


def test_a_run_page_goes_from_started_to_completed_without_reloading(
    site: dict[str, Any], page: Any
) -> None:
    run = site["client"].start_flow(demo, {"sleep": 2, "items": 4})
    page.goto(f"{site['base']}/runs/{run.run_id}")
    assert page.get_attribute("#run-status", "data-status") == "started"
    page.evaluate("window.__samePage = true")
    page.wait_for_selector("#live-state.on")  # the event stream is open

    page.wait_for_selector('#run-status[data-status="completed"]', timeout=30_000)
    assert page.evaluate("window.__samePage") is True  # patched in place, never reloaded
    dag = page.locator("svg.dag")
    assert dag.locator(".dag-node").count() == 3
    assert dag.locator(".dag-node.status-completed").count() == 3
    assert "4/4" in (dag.locator('.dag-node[data-step="square"]').text_content() or "")
    timeline = page.locator("svg.gantt")
    assert timeline.locator(".gantt-bar.status-completed").count() == 3
    assert timeline.bounding_box()["width"] > 100  # rendered, not just present
    assert "completed" in page.locator("#step-report").inner_text()


def test_the_runs_list_shows_new_runs_as_they_start(site: dict[str, Any], page: Any) -> None:
    page.goto(f"{site['base']}/")
    page.evaluate("window.__samePage = true")
    page.wait_for_selector("#live-state.on")
    run = site["client"].start_flow(demo, {"items": 1})
    row = page.wait_for_selector(f'tr[data-run="{run.run_id}"]', timeout=15_000)
    assert row is not None
    page.wait_for_selector(f'tr[data-run="{run.run_id}"] .status-completed', timeout=15_000)
    assert page.evaluate("window.__samePage") is True


def test_a_failed_step_shows_its_error(site: dict[str, Any], page: Any) -> None:
    run = site["client"].start_flow_sync(demo, {"fail": HOSTILE_ERROR}, timeout=30)
    page.goto(f"{site['base']}/runs/{run.run_id}")
    assert page.get_attribute("#run-status", "data-status") == "failed"
    assert page.locator('svg.dag .dag-node.status-failed[data-step="report"]').count() == 1
    error = page.locator("#step-report pre.error").inner_text()
    assert error == f"RuntimeError: {HOSTILE_ERROR}"  # shown as text, tags and all
    assert page.locator("main b").count() == 0
    assert page.evaluate("window.__xss") is None


def test_a_step_output_with_script_is_shown_as_text(site: dict[str, Any], page: Any) -> None:
    run = site["client"].start_flow_sync(demo, {"say": HOSTILE_OUTPUT}, timeout=30)
    page.goto(f"{site['base']}/runs/{run.run_id}")
    shown = page.locator('pre[aria-label="output of report"]').inner_text()
    assert HOSTILE_OUTPUT.replace('"', '\\"') in shown  # the JSON text of the output
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_a_schedule_is_disabled_and_enabled_from_its_page(site: dict[str, Any], page: Any) -> None:
    site["client"].schedule(demo, "0 3 * * *", name="nightly_demo")
    with serving(create_app(site["url"], enable_actions=True)) as base:
        page.goto(f"{base}/schedules")
        row = 'tr[data-schedule="nightly_demo"]'
        page.click(f"{row} button:has-text('Disable')")
        page.wait_for_selector(f"{row} button:has-text('Enable')", timeout=15_000)
        assert site["client"].get_schedule("nightly_demo").enabled is False
        page.click(f"{row} button:has-text('Enable')")
        page.wait_for_selector(f"{row} button:has-text('Disable')", timeout=15_000)
    assert site["client"].get_schedule("nightly_demo").enabled is True
    site["client"].unschedule("nightly_demo")
