"""The Python DSL: flows, steps, map steps and jobs, validated when defined, compiled to SQL."""

from __future__ import annotations

from pgflow.dsl._compile import compile_flow
from pgflow.dsl._definition import FlowDefinition, bind_handlers, definition_of
from pgflow.dsl._flow import Flow, Step, StepOptions
from pgflow.dsl._job import Job, job
from pgflow.dsl._loading import as_flow, load_flows
from pgflow.dsl._rules import (
    SLUG_MAX_LENGTH,
    SkipRule,
    StepConditions,
    StepSpec,
    order_steps,
    slug_problem,
)

__all__ = [
    "SLUG_MAX_LENGTH",
    "Flow",
    "FlowDefinition",
    "Job",
    "SkipRule",
    "Step",
    "StepConditions",
    "StepOptions",
    "StepSpec",
    "as_flow",
    "bind_handlers",
    "compile_flow",
    "definition_of",
    "job",
    "load_flows",
    "order_steps",
    "slug_problem",
]
