"""Compile a flow to the SQL a pgflow user would write: ``create_flow`` then ``add_step``s.

Only options that are set are emitted, as named arguments, in a fixed order; literals are
quoted (slugs cannot contain quotes, but the quoting does not rely on that).
"""

from __future__ import annotations

from typing import Any

from pgflow.dsl._flow import Flow

_FLOW_OPTION_ORDER = ("max_attempts", "base_delay", "timeout")
_STEP_OPTION_ORDER = ("max_attempts", "base_delay", "timeout", "start_delay")


def quote_literal(text: str) -> str:
    """An SQL string literal: single quotes doubled (standard_conforming_strings is on)."""
    return "'" + text.replace("'", "''") + "'"


def _named(options: dict[str, int], order: tuple[str, ...]) -> str:
    return "".join(f", {name} => {int(options[name])}" for name in order if name in options)


def compile_flow(flow: Flow[Any]) -> list[str]:
    """One statement per line: ``SELECT pgflow.create_flow(...)`` then one ``add_step`` each."""
    statements = [
        f"SELECT pgflow.create_flow({quote_literal(flow.slug)}"
        f"{_named(flow.options, _FLOW_OPTION_ORDER)});"
    ]
    for step in flow.steps:
        deps = ""
        if step.dependencies:
            deps = ", ARRAY[" + ", ".join(quote_literal(d) for d in step.dependencies) + "]"
        step_type = ", step_type => 'map'" if step.step_type == "map" else ""
        statements.append(
            f"SELECT pgflow.add_step({quote_literal(flow.slug)}, {quote_literal(step.slug)}"
            f"{deps}{_named(step.options, _STEP_OPTION_ORDER)}{step_type});"
        )
    return statements
