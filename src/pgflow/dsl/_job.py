"""Jobs: plain background work, as a flow of one step."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pgflow.dsl._flow import Flow, Step

I = TypeVar("I")  # noqa: E741 - the job input
R = TypeVar("R")
P = ParamSpec("P")


class Job(Generic[I, R]):
    """A single-step flow whose step has the job's slug. ``flow`` is what the SQL core runs."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        slug: str | None = None,
        max_attempts: int | None = None,
        base_delay: int | None = None,
        timeout: int | None = None,
        start_delay: int | None = None,
        transactional: bool = False,
    ) -> None:
        name = slug or str(getattr(fn, "__name__", ""))
        self.flow: Flow[I] = Flow(
            name, max_attempts=max_attempts, base_delay=base_delay, timeout=timeout
        )
        options: dict[str, Any] = {"slug": self.flow.slug}
        if start_delay is not None:
            options["start_delay"] = start_delay
        if transactional:
            options["transactional"] = True
        self.step: Step[I, R] = self.flow.step(**options)(fn)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    @property
    def slug(self) -> str:
        return self.flow.slug

    @property
    def handler(self) -> Callable[..., Any]:
        return self.step.handler

    def __repr__(self) -> str:
        return f"<Job {self.slug}>"


class _JobDecorator:
    def __init__(self, **options: Any) -> None:
        self._options = options

    @overload
    def __call__(self, fn: Callable[Concatenate[I, P], Coroutine[Any, Any, R]]) -> Job[I, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[I, P], R]) -> Job[I, R]: ...
    def __call__(self, fn: Callable[..., Any]) -> Job[Any, Any]:
        return Job(fn, **self._options)


@overload
def job(fn: Callable[Concatenate[I, P], Coroutine[Any, Any, R]], /) -> Job[I, R]: ...
@overload
def job(fn: Callable[Concatenate[I, P], R], /) -> Job[I, R]: ...
@overload
def job(
    *,
    slug: str | None = None,
    max_attempts: int | None = None,
    base_delay: int | None = None,
    timeout: int | None = None,
    start_delay: int | None = None,
    transactional: bool = False,
) -> _JobDecorator: ...
def job(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a job: ``@job`` or ``@job(max_attempts=5, timeout=30, start_delay=0)``.

    The handler takes the job input (and optionally a context): ``(input[, ctx]) -> output``.
    """
    if fn is not None:
        return Job(fn)
    return _JobDecorator(**options)
