"""How a handler is called: its signature checked once at definition time, then used per task.

A single-step handler takes the run input, then one positional argument per dependency (in
declaration order); a map handler takes the array element. Either may take one more parameter
for the :class:`~pgflow.context.Context`: annotated ``Context`` or named ``ctx``/``context``.
Arguments and return values typed as pydantic models are validated and dumped at the boundary.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pgflow.context import Context
from pgflow.errors import FlowDefinitionError

_CONTEXT_NAMES = frozenset({"ctx", "context"})
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _is_model(tp: object) -> bool:
    """A pydantic v2 model class (without importing pydantic when it is not installed)."""
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to no model conversion
        return {}


@dataclass(frozen=True)
class HandlerCall:
    """The checked calling convention of one handler."""

    fn: Callable[..., Any]
    is_async: bool
    positional: int  # how many positional arguments the step passes
    context: str | None  # None, or "positional" / the keyword name to pass the context by
    arg_models: tuple[Any, ...]  # per positional argument: a pydantic model class or None
    return_model: Any

    def arguments(
        self, values: Sequence[Any], ctx: Context | None
    ) -> tuple[list[Any], dict[str, Any]]:
        """Positional and keyword arguments for one call, models validated from JSON values."""
        args = [
            model.model_validate(value) if model is not None and value is not None else value
            for model, value in zip(self.arg_models, values, strict=True)
        ]
        kwargs: dict[str, Any] = {}
        if self.context == "positional":
            args.append(ctx)
        elif self.context is not None:
            kwargs[self.context] = ctx
        return args, kwargs


def _bare(signature: inspect.Signature) -> inspect.Signature:
    """The signature without annotations: what an error message needs to show."""
    empty = inspect.Parameter.empty
    return signature.replace(
        parameters=[p.replace(annotation=empty) for p in signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )


def _is_context_parameter(param: inspect.Parameter, hints: dict[str, Any]) -> bool:
    hint = hints.get(param.name, param.annotation)
    if hint is Context or hint == "Context":
        return True
    return param.name in _CONTEXT_NAMES


def inspect_handler(
    fn: Callable[..., Any], *, passes: int, describe: str, where: str
) -> HandlerCall:
    """Check that ``fn`` can take ``passes`` positional arguments (plus an optional context).

    ``describe`` says what those arguments are, for the error message.
    """
    if not callable(fn):
        raise FlowDefinitionError(f"{where}: the handler must be callable, got {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise FlowDefinitionError(f"{where}: cannot read the handler's signature: {exc}") from None
    hints = _hints(fn)
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    name = getattr(fn, "__name__", type(fn).__name__) + str(_bare(signature))

    context: str | None = None
    taken = positional[:passes]
    extra = positional[passes:]
    if len(taken) < passes and not var_positional:
        raise FlowDefinitionError(
            f"{where}: handler {name} cannot take the input: it accepts "
            f"{len(positional)} positional argument(s) but the step passes {passes} ({describe})"
        )
    if extra:
        first, rest = extra[0], extra[1:]
        if _is_context_parameter(first, hints):
            context = "positional"
        elif first.default is inspect.Parameter.empty:
            raise FlowDefinitionError(
                f"{where}: handler {name} cannot take the input: parameter "
                f"{first.name!r} would get no value (the step passes {passes}: {describe}; "
                "a context parameter must be annotated Context or named ctx)"
            )
        for param in rest:
            if param.default is inspect.Parameter.empty:
                raise FlowDefinitionError(
                    f"{where}: handler {name} cannot take the input: parameter "
                    f"{param.name!r} would get no value"
                )
    for param in params:
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            if context is None and _is_context_parameter(param, hints):
                context = param.name
            elif param.default is inspect.Parameter.empty:
                raise FlowDefinitionError(
                    f"{where}: handler {name} cannot take the input: keyword-only "
                    f"parameter {param.name!r} would get no value"
                )

    models = tuple(hints.get(p.name) if _is_model(hints.get(p.name)) else None for p in taken) + (
        None,
    ) * (passes - len(taken))
    returns = hints.get("return")
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an async __call__ on a callable object
    )
    return HandlerCall(
        fn=fn,
        is_async=is_async,
        positional=passes,
        context=context,
        arg_models=models,
        return_model=returns if _is_model(returns) else None,
    )


def _admits_none(hint: Any) -> bool:
    """Whether a parameter annotated ``hint`` may receive None (unknown types are given the
    benefit of the doubt)."""
    if hint in (Any, object, None, type(None)) or isinstance(hint, (str, typing.TypeVar)):
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _admits_none(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_admits_none(arg) for arg in typing.get_args(hint))
    return False


def require_optional(call: HandlerCall, position: int, where: str, why: str) -> None:
    """The handler's positional parameter at ``position`` (0 is the run input) gets None when
    ``why``: if it is annotated, the annotation must allow None."""
    params = [p for p in inspect.signature(call.fn).parameters.values() if p.kind in _POSITIONAL]
    if position >= len(params):  # taken by *args
        return
    param = params[position]
    hint = _hints(call.fn).get(param.name, param.annotation)
    if hint is inspect.Parameter.empty or _admits_none(hint):
        return
    raise FlowDefinitionError(
        f"{where}: parameter {param.name!r} gets None when {why}, but its annotation does not "
        "allow None: make it Optional (`... | None`)"
    )


def to_json_value(value: Any) -> Any:
    """A handler's return value as a JSON-ready value (pydantic models are dumped)."""
    if _is_model(type(value)):
        return value.model_dump(mode="json")
    return value
