"""``pgflow compile``: print the SQL that defines flows, for a migration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pgflow.cli._common import console, one_line_errors
from pgflow.dsl import compile_flow, load_flows


@one_line_errors
def compile_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="package.module:flow (a Flow, a Job, or a list of them), or package.module "
            "for every flow and job it defines.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
) -> None:
    """Print the create_flow/add_step calls that define the flows, one statement per line."""
    lines: list[str] = []
    for target in targets:
        for flow in load_flows(target):
            lines.extend(compile_flow(flow))
    text = "".join(f"{line}\n" for line in lines)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"wrote {len(lines)} statements to {output}", highlight=False)
