"""``pgflow flows [SLUG]``: each flow's DAG drawn as text (or ``--json``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pgflow.cli._common import DatabaseUrlOption, console, database_url, one_line_errors
from pgflow.cli._dag import DagStep, draw_flow, layers
from pgflow.errors import FlowNotFoundError
from pgflow.monitor import FlowInfo, FlowStepInfo, Monitor


def _set_options(step: FlowStepInfo) -> dict[str, object]:
    """The options the step sets itself, and the condition rules that differ from those of a
    step without a condition (when_unmet only matters with a pattern)."""
    chosen: dict[str, object] = {k: v for k, v in step.options.items() if v is not None}
    chosen.update(when=step.when, unless=step.unless)
    if step.has_condition:
        chosen["when_unmet"] = step.when_unmet
    if step.when_exhausted != "fail":
        chosen["when_exhausted"] = step.when_exhausted
    return {k: v for k, v in chosen.items() if v is not None}


def dag_steps(flow: FlowInfo) -> list[DagStep]:
    """The flow's steps as the layout takes them: only what each step sets itself."""
    return [
        DagStep(
            slug=step.step_slug,
            deps=step.deps,
            step_type=step.step_type,
            options=_set_options(step),
        )
        for step in flow.steps
    ]


def flow_payload(flow: FlowInfo) -> dict[str, Any]:
    """The flow as the monitor reports it, plus its topological layers (lists of slugs)."""
    return {**flow.as_dict(), "layers": layers(dag_steps(flow))}


@one_line_errors
def flows_command(
    slug: Annotated[str | None, typer.Argument(help="Only this flow.", show_default=False)] = None,
    database_url_flag: DatabaseUrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each flow's DAG: steps in layers, their type, options and dependencies."""
    with Monitor(database_url(database_url_flag), max_pool_size=1) as monitor:
        flows = monitor.flows()
    if slug is not None:
        flows = [f for f in flows if f.flow_slug == slug]
        if not flows:
            raise FlowNotFoundError(f"flow {slug!r} does not exist")
    if as_json:
        typer.echo(json.dumps({"flows": [flow_payload(f) for f in flows]}, indent=2))
        return
    if not flows:
        console.print("no flows", highlight=False)
        return
    for number, flow in enumerate(flows):
        if number:
            console.print()
        for line in draw_flow(flow.flow_slug, dag_steps(flow), flow.options):
            console.print(line, highlight=False, markup=False)
