"""Compile a flow to the SQL a pgflow user would write: ``create_flow`` then ``add_step``s.

Only options that are set are emitted, as named arguments, in a fixed order; literals are
quoted (slugs cannot contain quotes, but the quoting does not rely on that).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pgflow.dsl._definition import FlowDefinition, definition_of
from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job
from pgflow.dsl._rules import StepConditions

_FLOW_OPTION_ORDER = ("max_attempts", "base_delay", "timeout")
_STEP_OPTION_ORDER = ("max_attempts", "base_delay", "timeout", "start_delay")


def quote_literal(text: str) -> str:
    """An SQL string literal: single quotes doubled (standard_conforming_strings is on)."""
    return "'" + text.replace("'", "''") + "'"


def _named(options: Mapping[str, int] | None, order: tuple[str, ...]) -> str:
    values = options or {}
    return "".join(f", {name} => {int(values[name])}" for name in order if name in values)


def _conditions(conditions: StepConditions) -> str:
    """The condition arguments that are set (none for a step without a condition, so such a
    step compiles to the 0.8.1 call)."""
    args = ""
    for name, pattern in (
        ("required_input_pattern", conditions.when),
        ("forbidden_input_pattern", conditions.unless),
    ):
        if pattern is not None:
            args += f", {name} => {quote_literal(json.dumps(pattern, sort_keys=True))}::jsonb"
    for name, rule in (
        ("when_unmet", conditions.when_unmet),
        ("when_exhausted", conditions.when_exhausted),
    ):
        if rule is not None:
            args += f", {name} => {quote_literal(rule)}"
    return args


def compile_flow(flow: Flow[Any] | Job[Any, Any] | FlowDefinition) -> list[str]:
    """One statement per line: ``SELECT pgflow.create_flow(...)`` then one ``add_step`` each."""
    definition = definition_of(flow)
    slug = quote_literal(definition.slug)
    statements = [
        f"SELECT pgflow.create_flow({slug}{_named(definition.options, _FLOW_OPTION_ORDER)});"
    ]
    for step in definition.steps:
        deps = ""
        if step.dependencies:
            deps = ", ARRAY[" + ", ".join(quote_literal(d) for d in step.dependencies) + "]"
        step_type = ", step_type => 'map'" if step.step_type == "map" else ""
        statements.append(
            f"SELECT pgflow.add_step({slug}, {quote_literal(step.slug)}"
            f"{deps}{_named(step.options, _STEP_OPTION_ORDER)}{step_type}"
            f"{_conditions(step.conditions)});"
        )
    return statements
