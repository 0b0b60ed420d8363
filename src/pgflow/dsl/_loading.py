"""Finding flows in code: ``package.module:flow`` or every flow of ``package.module``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from pgflow.dsl._flow import Flow
from pgflow.dsl._job import Job
from pgflow.errors import FlowDefinitionError


def as_flow(obj: object) -> Flow[Any]:
    """The flow behind a flow or a job."""
    if isinstance(obj, Flow):
        return obj
    if isinstance(obj, Job):
        return obj.flow
    raise TypeError(f"expected a Flow or a Job, got {obj!r}")


def load_flows(target: str) -> list[Flow[Any]]:
    """Import ``module:name`` (one flow or job, or a list of them) or ``module`` (all of its
    flows and jobs, in definition order). The current directory is importable, as for
    ``python -m``."""
    module_name, _, attribute = target.partition(":")
    if not module_name:
        raise FlowDefinitionError(f"{target!r}: expected 'package.module' or 'package.module:flow'")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FlowDefinitionError(f"cannot import {module_name!r}: {exc}") from None
    if attribute:
        try:
            value = getattr(module, attribute)
        except AttributeError:
            raise FlowDefinitionError(
                f"module {module_name!r} has no attribute {attribute!r}"
            ) from None
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        try:
            return [as_flow(item) for item in items]
        except TypeError:
            raise FlowDefinitionError(
                f"{target!r} is not a pgflow Flow or Job (got {type(value).__name__})"
            ) from None
    found: list[Flow[Any]] = []
    for value in vars(module).values():
        if isinstance(value, (Flow, Job)):
            flow = as_flow(value)
            if all(flow is not f for f in found):
                found.append(flow)
    if not found:
        raise FlowDefinitionError(f"module {module_name!r} defines no pgflow Flow or Job")
    return found
