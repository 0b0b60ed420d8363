"""A flow as data: its slug, options and steps, without handlers.

This is what the SQL core stores, what ``ensure_flow`` compares and what ``compile_flow``
prints. Typed flows and jobs convert to it; runtime flows (``upsert_flow``) are built from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pgflow.dsl import _rules
from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job
from pgflow.errors import FlowDefinitionError

#: What ``create_flow`` stores for a flow option the definition leaves unset.
SQL_FLOW_DEFAULTS: Mapping[str, int] = {"max_attempts": 3, "base_delay": 5, "timeout": 60}


@dataclass(frozen=True)
class FlowDefinition:
    slug: str
    options: Mapping[str, int]
    steps: tuple[_rules.StepSpec, ...]

    def shape(self) -> list[tuple[str, str, tuple[str, ...], tuple[Any, Any, str, str]]]:
        """(slug, type, sorted dependencies, condition) per step, in step order: what must
        match. The condition is (when, unless, when_unmet, when_exhausted) as stored."""
        return [
            (s.slug, s.step_type, tuple(sorted(s.dependencies)), s.conditions.effective)
            for s in self.steps
        ]

    @classmethod
    def from_data(
        cls,
        slug: str,
        steps: Iterable[Mapping[str, Any]],
        options: Mapping[str, Any] | None = None,
    ) -> FlowDefinition:
        """Build and validate a definition from plain data (steps in any dependency order).

        Each step: ``{"slug": str, "depends_on": [str, ...], "step_type": "single"|"map",
        "max_attempts"|"base_delay"|"timeout"|"start_delay": int, "when"|"unless": {...},
        "when_unmet"|"when_exhausted": "fail"|"skip"|"skip-cascade"}`` (all but slug
        optional; see :class:`~pgflow.dsl._rules.StepConditions`).
        """
        flow_slug = _rules.check_flow_slug(slug)
        flow_options = _rules.check_options(
            flow_slug, None, dict(options or {}), _rules.FLOW_OPTIONS
        )
        specs: list[_rules.StepSpec] = []
        known_keys = {
            "slug",
            "depends_on",
            "step_type",
            *_rules.STEP_OPTIONS,
            *_rules.CONDITION_OPTIONS,
        }
        for raw in steps:
            if not isinstance(raw, Mapping) or "slug" not in raw:
                raise FlowDefinitionError(
                    f"{_rules.where(flow_slug)}: each step must be a mapping with a 'slug', "
                    f"got {raw!r}"
                )
            step_slug = str(raw["slug"])
            unknown = sorted(set(raw) - known_keys)
            if unknown:
                raise FlowDefinitionError(
                    f"{_rules.where(flow_slug, step_slug)}: unknown step field(s) "
                    f"{', '.join(map(repr, unknown))} (known: {', '.join(sorted(known_keys))})"
                )
            deps = raw.get("depends_on") or ()
            if isinstance(deps, str) or not all(isinstance(d, str) for d in deps):
                raise FlowDefinitionError(
                    f"{_rules.where(flow_slug, step_slug)}: depends_on must be a list of step "
                    f"slugs, got {deps!r}"
                )
            step_options = _rules.check_options(
                flow_slug,
                step_slug,
                {k: raw[k] for k in _rules.STEP_OPTIONS if k in raw},
                _rules.STEP_OPTIONS,
            )
            spec = _rules.StepSpec(
                step_slug, tuple(deps), str(raw.get("step_type", "single")), step_options
            )
            conditions = _rules.check_conditions(flow_slug, spec, raw)
            specs.append(dataclasses.replace(spec, conditions=conditions))
        if not specs:
            raise FlowDefinitionError(f"{_rules.where(flow_slug)}: a flow needs at least one step")
        return cls(flow_slug, flow_options, tuple(_rules.order_steps(flow_slug, specs)))


def definition_of(obj: Flow[Any] | Job[Any, Any] | FlowDefinition) -> FlowDefinition:
    """The data of a typed flow, a job, or a definition already."""
    if isinstance(obj, FlowDefinition):
        return obj
    flow = obj.flow if isinstance(obj, Job) else obj
    if not isinstance(flow, Flow):
        raise TypeError(f"expected a Flow, a Job or a FlowDefinition, got {obj!r}")
    if not flow.steps:
        raise FlowDefinitionError(f"{_rules.where(flow.slug)}: a flow needs at least one step")
    return FlowDefinition(
        flow.slug,
        dict(flow.options),
        tuple(
            _rules.StepSpec(s.slug, s.dependencies, s.step_type, dict(s.options), s.conditions)
            for s in flow.steps
        ),
    )


def bind_handlers(
    definition: FlowDefinition, handlers: Mapping[str, Callable[..., Any]]
) -> Flow[Any]:
    """A runnable flow from a definition made at run time and handlers bound by step slug.

    Every step needs a handler with the usual calling convention (the run input, then each
    dependency's output, in the definition's order; an element for a map step)."""
    missing = [s.slug for s in definition.steps if s.slug not in handlers]
    if missing:
        raise FlowDefinitionError(
            f"{_rules.where(definition.slug)}: no handler for step(s) {', '.join(missing)}"
        )
    extra = sorted(set(handlers) - {s.slug for s in definition.steps})
    if extra:
        raise FlowDefinitionError(
            f"{_rules.where(definition.slug)}: handlers for unknown step(s) {', '.join(extra)}"
        )
    flow: Flow[Any] = Flow(
        definition.slug,
        max_attempts=definition.options.get("max_attempts"),
        base_delay=definition.options.get("base_delay"),
        timeout=definition.options.get("timeout"),
    )
    for spec in definition.steps:
        options: dict[str, Any] = {
            "slug": spec.slug,
            **dict(spec.options or {}),
            **spec.conditions.as_options(),
        }
        if spec.step_type == "map":
            flow.map(*spec.dependencies, **options)(handlers[spec.slug])
        else:
            flow.step(*spec.dependencies, **options)(handlers[spec.slug])
    return flow
