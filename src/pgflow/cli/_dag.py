"""A flow's DAG as text: steps in topological layers, fan-in drawn as a bracket.

Pure functions (no I/O, no colours) so that every view can reuse them: ``layers`` gives the
layering, ``draw_flow`` the lines the terminal shows. For example::

    diamond  max_attempts=3 base_delay=5s timeout=60s
     1 │ start  single               ◀── run input
     2 │ left   single               ◀── start
       │ right  map     timeout=30s  ◀── start
     3 │ join   single               ◀─┬─ left
       │                               └─ right
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: The order options are shown in; the unit follows the number (attempts have none).
_OPTION_UNITS = {"max_attempts": "", "base_delay": "s", "timeout": "s", "start_delay": "s"}
#: A step's condition, shown after its options: patterns as compact JSON, rules as words.
_CONDITION_OPTIONS = ("when", "unless", "when_unmet", "when_exhausted")


class StepLike(Protocol):
    """Anything with a slug and the slugs it depends on."""

    @property
    def slug(self) -> str: ...

    @property
    def deps(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class DagStep:
    """One step as ``draw_flow`` needs it; ``options`` holds only the options (and condition
    rules) the step sets."""

    slug: str
    deps: Sequence[str] = ()
    step_type: str = "single"
    options: Mapping[str, object] = field(default_factory=dict)


def layers(steps: Iterable[StepLike]) -> list[list[str]]:
    """Step slugs in topological layers: a step sits one layer below its deepest dependency,
    roots in layer 0; within a layer, steps keep the order they were given in.

    Raises ``ValueError`` naming the step on a duplicate slug, an unknown dependency or a
    cycle.
    """
    deps_of: dict[str, Sequence[str]] = {}
    for step in steps:
        if step.slug in deps_of:
            raise ValueError(f"step {step.slug!r} appears twice")
        deps_of[step.slug] = step.deps
    for slug, deps in deps_of.items():
        unknown = [d for d in deps if d not in deps_of]
        if unknown:
            raise ValueError(f"step {slug!r} depends on unknown step(s) {', '.join(unknown)}")
    depth: dict[str, int] = {}
    while len(depth) < len(deps_of):
        placed = {
            slug: 1 + max((depth[d] for d in deps), default=-1)
            for slug, deps in deps_of.items()
            if slug not in depth and all(d in depth for d in deps)
        }
        if not placed:
            stuck = [slug for slug in deps_of if slug not in depth]
            raise ValueError(f"dependency cycle among steps {', '.join(stuck)}")
        depth.update(placed)
    result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for slug in deps_of:
        result[depth[slug]].append(slug)
    return result


def format_options(options: Mapping[str, object]) -> str:
    """``max_attempts=3 timeout=60s when={"plan":"pro"} when_unmet=skip``: the options and
    condition rules that are set, in a fixed order."""
    shown = [
        f"{name}={options[name]}{unit}"
        for name, unit in _OPTION_UNITS.items()
        if options.get(name) is not None
    ]
    shown += [
        f"{name}={json.dumps(options[name], separators=(',', ':'), ensure_ascii=False)}"
        if isinstance(options[name], Mapping)
        else f"{name}={options[name]}"
        for name in _CONDITION_OPTIONS
        if options.get(name) is not None
    ]
    return " ".join(shown)


def _arrows(deps: Sequence[str]) -> list[str]:
    if not deps:
        return ["◀── run input"]
    if len(deps) == 1:
        return [f"◀── {deps[0]}"]
    middle = [f"  ├─ {d}" for d in deps[1:-1]]
    return [f"◀─┬─ {deps[0]}", *middle, f"  └─ {deps[-1]}"]


def draw_flow(slug: str, steps: Sequence[DagStep], defaults: Mapping[str, object]) -> list[str]:
    """The flow as lines: a header with the flow's defaults, then one row per step, grouped by
    layer (numbered from 1), with its type, the options it overrides and its dependencies;
    several dependencies (fan-in) are joined by a bracket, one per line."""
    header = f"{slug}  {format_options(defaults)}".rstrip()
    if not steps:
        return [header, "   (no steps)"]
    by_slug = {s.slug: s for s in steps}
    layered = layers(steps)
    number_width = len(str(len(layered)))
    slug_width = max(len(s.slug) for s in steps)
    type_width = max(len(s.step_type) for s in steps)
    option_texts = {s.slug: format_options(s.options) for s in steps}
    option_width = max(len(t) for t in option_texts.values())
    lines = [header]
    for number, layer in enumerate(layered, start=1):
        for position, step_slug in enumerate(layer):
            step = by_slug[step_slug]
            label = str(number) if position == 0 else ""
            row = (
                f" {label:>{number_width}} │ {step.slug:<{slug_width}}  "
                f"{step.step_type:<{type_width}}  "
            )
            if option_width:
                row += f"{option_texts[step.slug]:<{option_width}}  "
            arrows = _arrows(step.deps)
            lines.append(row + arrows[0])
            continuation = f" {'':>{number_width}} │ " + " " * (len(row) - number_width - 4)
            lines.extend(continuation + arrow for arrow in arrows[1:])
    return lines
