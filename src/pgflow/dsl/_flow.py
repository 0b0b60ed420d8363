"""Flows and steps, typed so that mypy checks what flows between steps.

A handler receives the run input first, then the output of each dependency, in the order the
dependencies were given, and optionally a :class:`~pgflow.context.Context` last::

    flow = Flow("order", input=Order)

    @flow.step
    def validate(run: Order) -> list[str]: ...

    @flow.step(validate, timeout=30)
    def charge(run: Order, items: list[str], ctx: Context) -> Receipt: ...

    @flow.map(validate)
    def ship(item: str) -> str: ...

Up to four dependencies given as step objects are typed; more (or dependencies named by slug)
still work, with the dependency arguments typed ``Any``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypedDict, Unpack, overload

from typing_extensions import TypeVar

from pgflow.dsl import _rules
from pgflow.dsl._handlers import HandlerCall, inspect_handler, require_optional
from pgflow.dsl._schedule import DEFAULT_MAX_CATCH_UP, ScheduleSpec, schedule_problem
from pgflow.errors import FlowDefinitionError

FlowInput = TypeVar("FlowInput", default=Any)
I = TypeVar("I")  # noqa: E741 - the flow input of a step
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
P = ParamSpec("P")

StepType = Literal["single", "map"]


class StepOptions(TypedDict, total=False):
    """Options of one step; unset options inherit the flow's."""

    slug: str
    max_attempts: int
    base_delay: int
    timeout: int
    start_delay: int
    #: Run the handler inside the transaction that completes the task: ``ctx.conn`` is that
    #: transaction's connection (async for async handlers, sync for sync ones), so rows the
    #: handler writes commit together with the task, or not at all.
    transactional: bool
    #: Run the step only when its subject contains this JSON object (``@>``): the run input
    #: for a root step, ``{dependency slug: output}`` of its completed dependencies otherwise.
    when: Mapping[str, Any]
    #: Run the step only when its subject does not contain this JSON object.
    unless: Mapping[str, Any]
    #: A condition that does not hold: 'skip' the step (the default; dependents run without
    #: it and get None for its output), 'skip-cascade' (skip everything downstream too) or
    #: 'fail' the run.
    when_unmet: _rules.SkipRule
    #: Out of attempts: 'fail' the run (the default), 'skip' or 'skip-cascade' the step.
    when_exhausted: _rules.SkipRule


@dataclass(frozen=True, eq=False)
class Step(Generic[I, R_co]):
    """One step of a flow. ``I`` is the flow input type, ``R_co`` what the step produces."""

    flow_slug: str
    slug: str
    index: int
    step_type: StepType
    dependencies: tuple[str, ...]
    options: dict[str, int]
    call: HandlerCall
    array: bool = False
    transactional: bool = False
    conditions: _rules.StepConditions = field(default_factory=_rules.StepConditions)

    @property
    def handler(self) -> Callable[..., Any]:
        """The function this step runs (call it directly in unit tests)."""
        return self.call.fn

    @property
    def is_root(self) -> bool:
        return not self.dependencies

    def __repr__(self) -> str:
        deps = f" <- {', '.join(self.dependencies)}" if self.dependencies else ""
        return f"<Step {self.flow_slug}.{self.slug} ({self.step_type}){deps}>"


class _Decorator:
    """What ``flow.step(...)`` returns: applied to the handler, it adds the step."""

    def __init__(self, add: Callable[[Callable[..., Any]], Step[Any, Any]]) -> None:
        self._add = add


class _Root(_Decorator, Generic[I]):
    """Decorator for a step with no dependency: ``(run) -> R``."""

    @overload
    def __call__(self, fn: Callable[Concatenate[I, P], Coroutine[Any, Any, R]]) -> Step[I, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[I, P], R]) -> Step[I, R]: ...
    def __call__(self, fn: Callable[..., Any]) -> Step[Any, Any]:
        return self._add(fn)


class _Dep1(_Decorator, Generic[I, A]):
    """Decorator for a step with one dependency: ``(run, a) -> R``."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[I, A, P], Coroutine[Any, Any, R]]
    ) -> Step[I, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[I, A, P], R]) -> Step[I, R]: ...
    def __call__(self, fn: Callable[..., Any]) -> Step[Any, Any]:
        return self._add(fn)


class _Dep2(_Decorator, Generic[I, A, B]):
    """Decorator for a step with two dependencies: ``(run, a, b) -> R``."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[I, A, B, P], Coroutine[Any, Any, R]]
    ) -> Step[I, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[I, A, B, P], R]) -> Step[I, R]: ...
    def __call__(self, fn: Callable[..., Any]) -> Step[Any, Any]:
        return self._add(fn)


class _Dep3(_Decorator, Generic[I, A, B, C]):
    """Decorator for a step with three dependencies: ``(run, a, b, c) -> R``."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[I, A, B, C, P], Coroutine[Any, Any, R]]
    ) -> Step[I, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[I, A, B, C, P], R]) -> Step[I, R]: ...
    def __call__(self, fn: Callable[..., Any]) -> Step[Any, Any]:
        return self._add(fn)


class _Dep4(_Decorator, Generic[I, A, B, C, D]):
    """Decorator for a step with four dependencies: ``(run, a, b, c, d) -> R``."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[I, A, B, C, D, P], Coroutine[Any, Any, R]]
    ) -> Step[I, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[I, A, B, C, D, P], R]) -> Step[I, R]: ...
    def __call__(self, fn: Callable[..., Any]) -> Step[Any, Any]:
        return self._add(fn)


class _Untyped(_Decorator, Generic[I]):
    """Decorator for a step whose dependencies are not typed (named, or more than four)."""

    @overload
    def __call__(self, fn: Callable[..., Coroutine[Any, Any, R]]) -> Step[I, R]: ...
    @overload
    def __call__(self, fn: Callable[..., R]) -> Step[I, R]: ...
    def __call__(self, fn: Callable[..., Any]) -> Step[Any, Any]:
        return self._add(fn)


class _Map(_Decorator, Generic[I, E]):
    """Decorator for a map step: ``(element) -> R``; the step produces ``list[R]``."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[E, P], Coroutine[Any, Any, R]]
    ) -> Step[I, list[R]]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[E, P], R]) -> Step[I, list[R]]: ...
    def __call__(self, fn: Callable[..., Any]) -> Step[Any, Any]:
        return self._add(fn)


DependencyRef = Step[Any, Any] | str


class Flow(Generic[FlowInput]):
    """A DAG of steps run by the SQL core. ``FlowInput`` is the type of the run input.

    Options (all optional; unset ones take the SQL core's defaults: max_attempts 3,
    base_delay 5 s, timeout 60 s): ``max_attempts`` >= 1, ``base_delay`` >= 1 (seconds; retry
    n waits base_delay * 2**n), ``timeout`` >= 3 (seconds).

    ``schedule`` (a cron expression, UTC) starts a run with ``schedule_input`` at every
    occurrence, fired by the workers serving the flow; :meth:`schedule` adds more schedules
    (``input`` names the input *type* of the flow, hence ``schedule_input``).
    """

    def __init__(
        self,
        slug: str,
        *,
        input: type[FlowInput] | None = None,
        max_attempts: int | None = None,
        base_delay: int | None = None,
        timeout: int | None = None,
        schedule: str | None = None,
        schedule_input: Any = None,
    ) -> None:
        self.slug = _rules.check_flow_slug(slug)
        self.input_type = input
        self.options = _rules.check_options(
            self.slug,
            None,
            {"max_attempts": max_attempts, "base_delay": base_delay, "timeout": timeout},
            _rules.FLOW_OPTIONS,
        )
        self._steps: dict[str, Step[FlowInput, Any]] = {}
        self._schedules: dict[str, ScheduleSpec] = {}
        if schedule is not None:
            self.schedule(schedule, input=schedule_input)
        elif schedule_input is not None:
            raise FlowDefinitionError(
                f"{_rules.where(self.slug)}: schedule_input is given without a schedule"
            )

    # -- reading --------------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[Step[FlowInput, Any], ...]:
        """The steps in definition order (their ``step_index`` order in the SQL core)."""
        return tuple(self._steps.values())

    def __getitem__(self, slug: str) -> Step[FlowInput, Any]:
        try:
            return self._steps[slug]
        except KeyError:
            raise KeyError(f"flow {self.slug!r} has no step {slug!r}") from None

    def __contains__(self, slug: object) -> bool:
        return slug in self._steps

    def __iter__(self) -> Iterator[Step[FlowInput, Any]]:
        return iter(self._steps.values())

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        return f"<Flow {self.slug} ({len(self._steps)} steps)>"

    def dependents(self, slug: str) -> tuple[str, ...]:
        """Slugs of the steps that depend on ``slug``."""
        return tuple(s.slug for s in self._steps.values() if slug in s.dependencies)

    @property
    def leaf_steps(self) -> tuple[Step[FlowInput, Any], ...]:
        """Steps nothing depends on: their outputs make up the run output."""
        needed = {d for s in self._steps.values() for d in s.dependencies}
        return tuple(s for s in self._steps.values() if s.slug not in needed)

    @property
    def schedules(self) -> tuple[ScheduleSpec, ...]:
        """The schedules declared for this flow, in declaration order."""
        return tuple(self._schedules.values())

    # -- building -------------------------------------------------------------------------------
    def schedule(
        self,
        cron: str,
        *,
        input: Any = None,
        name: str | None = None,
        timezone: str = "UTC",
        max_catch_up: int = DEFAULT_MAX_CATCH_UP,
    ) -> ScheduleSpec:
        """Start a run with ``input`` at every occurrence of ``cron`` (see :mod:`pgflow._cron`),
        in ``timezone``. ``name`` (default: the flow slug) identifies the schedule in the
        database; give one to each further schedule of the flow. After downtime, at most
        ``max_catch_up`` missed occurrences are fired, the most recent ones."""
        chosen = self.slug if name is None else name
        problem, _ = schedule_problem(chosen, cron, timezone, max_catch_up)
        if problem is not None:
            raise FlowDefinitionError(f"{_rules.where(self.slug)}: {problem}")
        if chosen in self._schedules:
            raise FlowDefinitionError(
                f"{_rules.where(self.slug)}: duplicate schedule name {chosen!r} (give each "
                "schedule of the flow its own name=)"
            )
        spec = ScheduleSpec(chosen, cron, input, timezone, max_catch_up)
        self._schedules[chosen] = spec
        return spec

    def _dependency_slug(self, ref: object, step_slug: str) -> str:
        if isinstance(ref, Step):
            if ref.flow_slug != self.slug:
                raise FlowDefinitionError(
                    f"{_rules.where(self.slug, step_slug)}: dependency {ref.slug!r} belongs to "
                    f"flow {ref.flow_slug!r}"
                )
            return ref.slug
        if isinstance(ref, str):
            return ref
        raise FlowDefinitionError(
            f"{_rules.where(self.slug, step_slug)}: a dependency must be a step of this flow or "
            f"its slug, got {ref!r}"
        )

    def _adder(
        self,
        deps: Sequence[object],
        options: Mapping[str, Any],
        *,
        step_type: StepType,
        array: bool = False,
    ) -> Callable[[Callable[..., Any]], Step[Any, Any]]:
        def add(fn: Callable[..., Any]) -> Step[Any, Any]:
            slug = options.get("slug") or getattr(fn, "__name__", None)
            if slug is None:
                raise FlowDefinitionError(
                    f"{_rules.where(self.slug)}: give the step a slug (its handler has no name)"
                )
            slug = _rules.check_step_slug(self.slug, slug)
            if slug in self._steps:
                raise FlowDefinitionError(
                    f"{_rules.where(self.slug, slug)}: duplicate step slug (already defined)"
                )
            dep_slugs = tuple(self._dependency_slug(d, slug) for d in deps)
            spec = _rules.StepSpec(slug, dep_slugs, step_type)
            _rules.check_dependencies(self.slug, spec, self._steps)
            step_options = _rules.check_options(
                self.slug,
                slug,
                {
                    k: v
                    for k, v in options.items()
                    if k not in ("slug", "transactional", *_rules.CONDITION_OPTIONS)
                },
                _rules.STEP_OPTIONS,
            )
            conditions = _rules.check_conditions(self.slug, spec, options)
            where = _rules.where(self.slug, slug)
            if step_type == "map":
                source = f"dependency {dep_slugs[0]!r}" if dep_slugs else "the run input"
                call = inspect_handler(
                    fn, passes=1, describe=f"one element of {source}", where=where
                )
            else:
                describe = "the run input" + (
                    f" and the output of {', '.join(repr(d) for d in dep_slugs)}"
                    if dep_slugs
                    else ""
                )
                call = inspect_handler(
                    fn, passes=1 + len(dep_slugs), describe=describe, where=where
                )
                for position, dep in enumerate(dep_slugs, start=1):
                    dependency = self._steps[dep]
                    if dependency.conditions.skipped_alone:
                        require_optional(call, position, where, f"step {dep!r} is skipped")
            if array:
                _check_array_return(call, where)
            step: Step[Any, Any] = Step(
                flow_slug=self.slug,
                slug=slug,
                index=len(self._steps),
                step_type=step_type,
                dependencies=dep_slugs,
                options=step_options,
                call=call,
                array=array,
                transactional=bool(options.get("transactional", False)),
                conditions=conditions,
            )
            self._steps[slug] = step
            return step

        return add

    # step(): a bare decorator, or with dependencies and options ---------------------------------
    @overload
    def step(
        self, fn: Callable[Concatenate[FlowInput, P], Coroutine[Any, Any, R]], /
    ) -> Step[FlowInput, R]: ...
    @overload
    def step(self, fn: Callable[Concatenate[FlowInput, P], R], /) -> Step[FlowInput, R]: ...
    @overload
    def step(self, /, **options: Unpack[StepOptions]) -> _Root[FlowInput]: ...
    @overload
    def step(
        self, a: Step[FlowInput, A], /, **options: Unpack[StepOptions]
    ) -> _Dep1[FlowInput, A]: ...
    @overload
    def step(
        self, a: Step[FlowInput, A], b: Step[FlowInput, B], /, **options: Unpack[StepOptions]
    ) -> _Dep2[FlowInput, A, B]: ...
    @overload
    def step(
        self,
        a: Step[FlowInput, A],
        b: Step[FlowInput, B],
        c: Step[FlowInput, C],
        /,
        **options: Unpack[StepOptions],
    ) -> _Dep3[FlowInput, A, B, C]: ...
    @overload
    def step(
        self,
        a: Step[FlowInput, A],
        b: Step[FlowInput, B],
        c: Step[FlowInput, C],
        d: Step[FlowInput, D],
        /,
        **options: Unpack[StepOptions],
    ) -> _Dep4[FlowInput, A, B, C, D]: ...
    @overload
    def step(
        self, a: str, /, *more: DependencyRef, **options: Unpack[StepOptions]
    ) -> _Untyped[FlowInput]: ...
    @overload
    def step(
        self,
        a: DependencyRef,
        b: DependencyRef,
        c: DependencyRef,
        d: DependencyRef,
        e: DependencyRef,
        /,
        *more: DependencyRef,
        **options: Unpack[StepOptions],
    ) -> _Untyped[FlowInput]: ...
    def step(self, *deps: Any, **options: Any) -> Any:
        """Add a single step: ``(run, *dependency_outputs[, ctx]) -> output``."""
        if len(deps) == 1 and not options and _is_handler(deps[0]):
            return self._adder((), {}, step_type="single")(deps[0])
        return _Untyped(self._adder(deps, options, step_type="single"))

    # array(): a single step whose output must be a list (what a dependent map iterates) -------
    @overload
    def array(
        self, fn: Callable[Concatenate[FlowInput, P], Coroutine[Any, Any, list[R]]], /
    ) -> Step[FlowInput, list[R]]: ...
    @overload
    def array(
        self, fn: Callable[Concatenate[FlowInput, P], list[R]], /
    ) -> Step[FlowInput, list[R]]: ...
    @overload
    def array(self, /, **options: Unpack[StepOptions]) -> _Root[FlowInput]: ...
    @overload
    def array(
        self, a: Step[FlowInput, A], /, **options: Unpack[StepOptions]
    ) -> _Dep1[FlowInput, A]: ...
    @overload
    def array(
        self, a: Step[FlowInput, A], b: Step[FlowInput, B], /, **options: Unpack[StepOptions]
    ) -> _Dep2[FlowInput, A, B]: ...
    @overload
    def array(
        self, a: str, /, *more: DependencyRef, **options: Unpack[StepOptions]
    ) -> _Untyped[FlowInput]: ...
    @overload
    def array(
        self,
        a: DependencyRef,
        b: DependencyRef,
        c: DependencyRef,
        /,
        *more: DependencyRef,
        **options: Unpack[StepOptions],
    ) -> _Untyped[FlowInput]: ...
    def array(self, *deps: Any, **options: Any) -> Any:
        """Like :meth:`step`, for a handler that returns a list (checked when annotated)."""
        if len(deps) == 1 and not options and _is_handler(deps[0]):
            return self._adder((), {}, step_type="single", array=True)(deps[0])
        return _Untyped(self._adder(deps, options, step_type="single", array=True))

    # map(): one task per array element ----------------------------------------------------------
    @overload
    def map(
        self, over: Step[FlowInput, Sequence[E]], /, **options: Unpack[StepOptions]
    ) -> _Map[FlowInput, E]: ...
    @overload
    def map(self: Flow[list[E]], /, **options: Unpack[StepOptions]) -> _Map[list[E], E]: ...
    @overload
    def map(self, over: str, /, **options: Unpack[StepOptions]) -> _Map[FlowInput, Any]: ...
    def map(self, *over: Any, **options: Any) -> Any:
        """Add a map step: one task per element of the run input (root map, no argument) or of
        one dependency's array output; the handler takes one element, the step outputs the list
        of results in element order."""
        return _Map(self._adder(over, options, step_type="map"))


def _is_handler(obj: object) -> bool:
    """A bare ``@flow.step`` gets the function itself (steps and slugs are not functions)."""
    return callable(obj) and not isinstance(obj, (Step, str))


def _check_array_return(call: HandlerCall, where: str) -> None:
    import typing

    try:
        hints = typing.get_type_hints(call.fn)
    except Exception:
        return
    returns = hints.get("return")
    if returns is None:
        return
    origin = typing.get_origin(returns) or returns
    if origin in (Coroutine,):
        args = typing.get_args(returns)
        returns = args[-1] if args else Any
        origin = typing.get_origin(returns) or returns
    if (
        returns is Any
        or origin in (list, tuple, Sequence)
        or (isinstance(origin, type) and issubclass(origin, (list, tuple)))
    ):
        return
    shown = returns.__name__ if isinstance(returns, type) else str(returns)
    raise FlowDefinitionError(
        f"{where}: an array step must return a list, but its handler is annotated to return {shown}"
    )
