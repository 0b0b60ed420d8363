"""Our compiled SQL equals upstream's DSL output, and gives the same rows on both cores."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgflow import Flow, job
from pgflow.dsl import compile_flow
from pgflow.testing._upstream import UpstreamUnavailable

from ._upstream_dsl import upstream_compile

pytestmark = pytest.mark.differential


def _flows() -> list[tuple[Flow[Any], str]]:
    website = Flow("analyze_website", max_attempts=5, timeout=10, base_delay=2)

    @website.step
    def fetch(run: Any) -> Any:
        return 1

    @website.array(fetch, base_delay=3, start_delay=2)
    def pages(run: Any, site: Any) -> list[Any]:
        return []

    @website.map(pages, timeout=7, max_attempts=2)
    def summary(page: Any) -> Any:
        return page

    @website.step(fetch, summary, pages)
    def report(run: Any, a: Any, b: Any, c: Any) -> Any:
        return 0

    roots: Flow[list[int]] = Flow("root_map")

    @roots.map(start_delay=0)
    def double(x: int) -> int:
        return x

    @roots.step(double)
    def total(run: Any, d: Any) -> int:
        return 0

    @job(timeout=30)
    def send_email(payload: Any) -> None:
        return None

    js_website = (
        "new Flow({slug: 'analyze_website', maxAttempts: 5, timeout: 10, baseDelay: 2})"
        ".step({slug: 'fetch'}, () => 1)"
        ".array({slug: 'pages', dependsOn: ['fetch'], baseDelay: 3, startDelay: 2}, () => [])"
        ".map({slug: 'summary', array: 'pages', timeout: 7, maxAttempts: 2}, (p) => p)"
        ".step({slug: 'report', dependsOn: ['fetch', 'summary', 'pages']}, () => 0)"
    )
    js_roots = (
        "new Flow({slug: 'root_map'})"
        ".map({slug: 'double', startDelay: 0}, (x) => x)"
        ".step({slug: 'total', dependsOn: ['double']}, () => 0)"
    )
    js_job = "new Flow({slug: 'send_email', timeout: 30}).step({slug: 'send_email'}, () => null)"
    return [(website, js_website), (roots, js_roots), (send_email.flow, js_job)]


def _definition_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            "flows": conn.execute(
                "SELECT flow_slug, opt_max_attempts, opt_base_delay, opt_timeout "
                "FROM pgflow.flows ORDER BY flow_slug"
            ).fetchall(),
            "steps": conn.execute(
                "SELECT flow_slug, step_slug, step_type, step_index, deps_count, "
                "opt_max_attempts, opt_base_delay, opt_timeout, opt_start_delay "
                "FROM pgflow.steps ORDER BY flow_slug, step_index"
            ).fetchall(),
            "deps": conn.execute(
                "SELECT flow_slug, dep_slug, step_slug FROM pgflow.deps "
                "ORDER BY flow_slug, dep_slug, step_slug"
            ).fetchall(),
            "queues": conn.execute(
                "SELECT queue_name FROM pgmq.list_queues() ORDER BY queue_name"
            ).fetchall(),
        }


def test_compiled_sql_matches_upstream_dsl_text() -> None:
    flows = _flows()
    try:
        theirs = upstream_compile([js for _, js in flows])
    except UpstreamUnavailable as exc:
        from .conftest import _upstream_unavailable

        _upstream_unavailable(exc.reason)
        return
    assert [compile_flow(flow) for flow, _ in flows] == theirs


def test_compiled_sql_gives_identical_definitions_on_both_cores(
    ours_database_url: str, upstream_database_url: str
) -> None:
    script = "\n".join(line for flow, _ in _flows() for line in compile_flow(flow))
    for url in (ours_database_url, upstream_database_url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(script)
    ours, theirs = _definition_rows(ours_database_url), _definition_rows(upstream_database_url)
    assert ours["steps"], "nothing was compiled"
    assert ours == theirs
