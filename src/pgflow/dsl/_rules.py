"""Definition rules shared by the typed DSL and flows built from plain data.

The slug rule is the SQL core's ``is_valid_slug``; option ranges are the DSL's, stricter than
the SQL checks (which also accept max_attempts 0, base_delay 0 and timeout 1) because those
values are almost always mistakes in code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pgflow.errors import FlowDefinitionError

SLUG_MAX_LENGTH = 128
_SLUG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_SLUGS = frozenset({"run"})

#: option -> smallest allowed value
OPTION_MINIMUMS: Mapping[str, int] = {
    "max_attempts": 1,
    "base_delay": 1,
    "timeout": 3,
    "start_delay": 0,
}
FLOW_OPTIONS = ("max_attempts", "base_delay", "timeout")
STEP_OPTIONS = ("max_attempts", "base_delay", "timeout", "start_delay")

#: What happens to a step whose condition is unmet (when_unmet) or whose task ran out of
#: attempts (when_exhausted): fail the run, skip the step alone, or skip it and everything
#: downstream of it.
SkipRule = Literal["fail", "skip", "skip-cascade"]
SKIP_RULES: tuple[str, ...] = get_args(SkipRule)
#: The step options that make up its condition, as the DSL and plain data name them.
CONDITION_OPTIONS = ("when", "unless", "when_unmet", "when_exhausted")


def where(flow_slug: str, step_slug: str | None = None) -> str:
    """The prefix of every definition error: which flow, and which step."""
    return f"flow {flow_slug!r}" + (f", step {step_slug!r}" if step_slug is not None else "")


def slug_problem(slug: object) -> str | None:
    """Why ``slug`` is not a valid slug, or None when it is."""
    if not isinstance(slug, str):
        return f"a slug must be a string, not {type(slug).__name__}"
    if not slug:
        return "a slug must not be empty"
    if len(slug) > SLUG_MAX_LENGTH:
        return f"a slug must be at most {SLUG_MAX_LENGTH} characters (this one has {len(slug)})"
    if slug[0].isdigit():
        return "a slug must not start with a digit"
    if not _SLUG.fullmatch(slug):
        return "a slug may contain only ASCII letters, digits and underscores"
    if slug in RESERVED_SLUGS:
        return f"{slug!r} is reserved (task inputs carry the run input under that key)"
    return None


def check_flow_slug(slug: object) -> str:
    problem = slug_problem(slug)
    if problem is not None:
        raise FlowDefinitionError(f"flow {slug!r}: invalid flow slug: {problem}")
    assert isinstance(slug, str)
    return slug


def check_step_slug(flow_slug: str, slug: object) -> str:
    problem = slug_problem(slug)
    if problem is not None:
        raise FlowDefinitionError(f"{where(flow_slug, str(slug))}: invalid step slug: {problem}")
    assert isinstance(slug, str)
    return slug


def check_options(
    flow_slug: str, step_slug: str | None, options: Mapping[str, object], allowed: Sequence[str]
) -> dict[str, int]:
    """Validate the options that are set (not None); return them as a dict."""
    checked: dict[str, int] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name not in allowed:
            level = "step" if step_slug is not None else "flow"
            raise FlowDefinitionError(
                f"{where(flow_slug, step_slug)}: unknown {level} option {name!r} "
                f"(known: {', '.join(allowed)})"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise FlowDefinitionError(
                f"{where(flow_slug, step_slug)}: option {name} must be an integer, got {value!r}"
            )
        minimum = OPTION_MINIMUMS[name]
        if value < minimum:
            raise FlowDefinitionError(
                f"{where(flow_slug, step_slug)}: option {name} must be >= {minimum}, got {value}"
            )
        if value > 2**31 - 1:
            raise FlowDefinitionError(
                f"{where(flow_slug, step_slug)}: option {name} must fit in 32 bits, got {value}"
            )
        checked[name] = value
    return checked


@dataclass(frozen=True)
class StepConditions:
    """When a step runs. ``when``: a JSON object its subject must contain; ``unless``: one it
    must not contain. The subject is the run input for a root step, and the object
    ``{dependency slug: output}`` of its completed dependencies otherwise. Unset rules are
    None and take the SQL core's defaults (``when_unmet`` 'skip', ``when_exhausted`` 'fail')."""

    when: Mapping[str, Any] | None = None
    unless: Mapping[str, Any] | None = None
    when_unmet: SkipRule | None = None
    when_exhausted: SkipRule | None = None

    @property
    def effective(self) -> tuple[Any, Any, str, str]:
        """(when, unless, when_unmet, when_exhausted) as the SQL core stores them."""
        return (
            self.when,
            self.unless,
            self.when_unmet or "skip",
            self.when_exhausted or "fail",
        )

    @property
    def skipped_alone(self) -> bool:
        """Whether the step may end up skipped while its dependents still run (they then get
        None for its output): skip, not skip-cascade, on an unmet condition or exhaustion."""
        _, _, when_unmet, when_exhausted = self.effective
        has_condition = self.when is not None or self.unless is not None
        return (has_condition and when_unmet == "skip") or when_exhausted == "skip"

    def as_options(self) -> dict[str, Any]:
        """The rules that are set, as step options (``flow.step(..., **options)``)."""
        return {name: getattr(self, name) for name in CONDITION_OPTIONS if getattr(self, name)}


def _json_pattern(where_: str, name: str, pattern: object) -> dict[str, Any]:
    if not isinstance(pattern, Mapping):
        raise FlowDefinitionError(
            f"{where_}: {name}= must be a JSON object (a dict), got {type(pattern).__name__}"
        )
    try:
        text = json.dumps(dict(pattern), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise FlowDefinitionError(f"{where_}: {name}= must be JSON-serialisable: {exc}") from None
    # Keys must survive the round trip: json.dumps turns 1 into "1", which is not what was meant.
    if any(not isinstance(key, str) for key in pattern):
        raise FlowDefinitionError(f"{where_}: {name}= keys must be strings")
    normalised: dict[str, Any] = json.loads(text)
    return normalised


def check_conditions(
    flow_slug: str, step: StepSpec, options: Mapping[str, object]
) -> StepConditions:
    """Validate the condition options of ``step`` (those that are set, not None)."""
    where_ = where(flow_slug, step.slug)
    patterns: dict[str, dict[str, Any] | None] = {"when": None, "unless": None}
    for name in patterns:
        if options.get(name) is not None:
            patterns[name] = _json_pattern(where_, name, options[name])
    rules: dict[str, Any] = {}
    for name in ("when_unmet", "when_exhausted"):
        value = options.get(name)
        if value is not None and value not in SKIP_RULES:
            raise FlowDefinitionError(
                f"{where_}: {name} must be one of {', '.join(map(repr, SKIP_RULES))}, got {value!r}"
            )
        rules[name] = value
    given = [name for name, pattern in patterns.items() if pattern is not None]
    if rules["when_unmet"] is not None and not given:
        raise FlowDefinitionError(
            f"{where_}: when_unmet has no effect without a condition (when= or unless=)"
        )
    if given and step.step_type == "map" and not step.dependencies:
        raise FlowDefinitionError(
            f"{where_}: a root map step cannot have a condition: its subject, the run input, "
            "is an array, which no object pattern matches"
        )
    if step.dependencies:
        for name in given:
            pattern = patterns[name]
            assert pattern is not None
            unknown = sorted(set(pattern) - set(step.dependencies))
            if unknown:
                raise FlowDefinitionError(
                    f"{where_}: {name}= is matched against the outputs of the dependencies, "
                    f"keyed by slug; {', '.join(map(repr, unknown))} is not a dependency "
                    f"(dependencies: {', '.join(step.dependencies)})"
                )
    return StepConditions(patterns["when"], patterns["unless"], **rules)


@dataclass(frozen=True)
class StepSpec:
    """A step as plain data: what the SQL core stores about it."""

    slug: str
    dependencies: tuple[str, ...] = ()
    step_type: str = "single"
    options: Mapping[str, int] | None = None
    conditions: StepConditions = field(default_factory=StepConditions)


def check_dependencies(flow_slug: str, step: StepSpec, defined: Iterable[str]) -> None:
    """Dependencies of ``step`` must be earlier steps, distinct, and a map has at most one."""
    known = set(defined)
    if step.step_type not in ("single", "map"):
        raise FlowDefinitionError(
            f"{where(flow_slug, step.slug)}: step type must be 'single' or 'map', "
            f"got {step.step_type!r}"
        )
    seen: set[str] = set()
    for dep in step.dependencies:
        if dep == step.slug:
            raise FlowDefinitionError(
                f"{where(flow_slug, step.slug)}: a step cannot depend on itself"
            )
        if dep in seen:
            raise FlowDefinitionError(
                f"{where(flow_slug, step.slug)}: dependency {dep!r} is listed twice"
            )
        seen.add(dep)
        if dep not in known:
            raise FlowDefinitionError(
                f"{where(flow_slug, step.slug)}: unknown dependency {dep!r} "
                "(a step can only depend on steps defined before it)"
            )
    if step.step_type == "map" and len(step.dependencies) > 1:
        raise FlowDefinitionError(
            f"{where(flow_slug, step.slug)}: a map step can have at most one dependency "
            f"(the array it maps over), got {len(step.dependencies)}: "
            f"{', '.join(step.dependencies)}"
        )


def order_steps(flow_slug: str, steps: Sequence[StepSpec]) -> list[StepSpec]:
    """Validate a whole definition given in any order; return it in a dependency order.

    Steps keep their given order where the dependencies allow it, so a definition that is
    already ordered compiles to the same step indices.
    """
    by_slug: dict[str, StepSpec] = {}
    for step in steps:
        check_step_slug(flow_slug, step.slug)
        if step.slug in by_slug:
            raise FlowDefinitionError(f"{where(flow_slug, step.slug)}: duplicate step slug")
        by_slug[step.slug] = step
    for step in steps:
        check_dependencies(flow_slug, step, (s for s in by_slug if s != step.slug))
    ordered: list[StepSpec] = []
    placed: set[str] = set()
    remaining = list(steps)
    while remaining:
        ready = [s for s in remaining if all(d in placed for d in s.dependencies)]
        if not ready:
            raise FlowDefinitionError(
                f"{where(flow_slug)}: the dependencies form a cycle: {_describe_cycle(remaining)}"
            )
        first = ready[0]
        ordered.append(first)
        placed.add(first.slug)
        remaining.remove(first)
    return ordered


def _describe_cycle(steps: Sequence[StepSpec]) -> str:
    """One cycle among ``steps`` (each waits on another of them), in words."""
    waiting = {s.slug: list(s.dependencies) for s in steps}
    start = steps[0].slug
    path = [start]
    current = start
    while True:
        nxt = next(d for d in waiting[current] if d in waiting)
        if nxt in path:
            cycle = [*path[path.index(nxt) :], nxt]
            return ", which depends on ".join(repr(s) for s in cycle).replace(
                ", which depends on ", " depends on ", 1
            )
        path.append(nxt)
        current = nxt
