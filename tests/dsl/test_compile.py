"""Compiled SQL is exactly what a pgflow user writes, and the CLI prints it."""

from __future__ import annotations

from typing import Any

from pgflow import Flow, job
from pgflow.dsl import compile_flow
from tests._helpers import run_cli


def sample_flow() -> Flow[Any]:
    flow = Flow("analyze_website", max_attempts=5, timeout=10)

    @flow.step
    def website(run: Any) -> Any:
        return 1

    @flow.array(website, base_delay=3, start_delay=2)
    def pages(run: Any, site: Any) -> list[Any]:
        return []

    @flow.map(pages, timeout=7)
    def summary(page: Any) -> Any:
        return page

    @flow.step(website, summary)
    def report(run: Any, site: Any, summaries: Any) -> Any:
        return 0

    return flow


EXPECTED = [
    "SELECT pgflow.create_flow('analyze_website', max_attempts => 5, timeout => 10);",
    "SELECT pgflow.add_step('analyze_website', 'website');",
    "SELECT pgflow.add_step('analyze_website', 'pages', ARRAY['website'], base_delay => 3, "
    "start_delay => 2);",
    "SELECT pgflow.add_step('analyze_website', 'summary', ARRAY['pages'], timeout => 7, "
    "step_type => 'map');",
    "SELECT pgflow.add_step('analyze_website', 'report', ARRAY['website', 'summary']);",
]


def test_compile_emits_only_the_options_that_are_set() -> None:
    assert compile_flow(sample_flow()) == EXPECTED


def test_root_map_and_job() -> None:
    root: Flow[list[int]] = Flow("root")

    @root.map()
    def double(x: int) -> int:
        return 2 * x

    assert compile_flow(root) == [
        "SELECT pgflow.create_flow('root');",
        "SELECT pgflow.add_step('root', 'double', step_type => 'map');",
    ]

    @job(base_delay=2, start_delay=0)
    def cleanup(payload: Any) -> None:
        return None

    assert compile_flow(cleanup.flow) == [
        "SELECT pgflow.create_flow('cleanup', base_delay => 2);",
        "SELECT pgflow.add_step('cleanup', 'cleanup', start_delay => 0);",
    ]


def test_cli_compile_prints_the_statements(tmp_path: Any, monkeypatch: Any) -> None:
    (tmp_path / "my_flows.py").write_text(
        "from pgflow import Flow, job\n"
        "flow = Flow('greet')\n"
        "@flow.step\n"
        "def hello(run):\n"
        "    return 'hi'\n"
        "@job\n"
        "def ping(payload):\n"
        "    return None\n"
    )
    monkeypatch.chdir(tmp_path)
    one = run_cli("compile", "my_flows:flow")
    assert one.returncode == 0, one.stderr
    assert one.stdout == (
        "SELECT pgflow.create_flow('greet');\nSELECT pgflow.add_step('greet', 'hello');\n"
    )
    every = run_cli("compile", "my_flows")
    assert every.returncode == 0, every.stderr
    assert "SELECT pgflow.create_flow('ping');" in every.stdout
    missing = run_cli("compile", "my_flows:nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: module 'my_flows' has no attribute 'nope'"
