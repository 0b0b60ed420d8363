"""What JSON cannot hold, named precisely: the check behind run inputs and step outputs."""

from __future__ import annotations

import math
from typing import Any


def json_problem(value: Any, path: str, _containing: frozenset[int] = frozenset()) -> str | None:
    """Why the first part of ``value`` that JSON cannot represent is refused, or None.

    Stricter than ``json.dumps``, which silently turns non-string keys into strings, and than
    JSON itself: jsonb cannot hold a NUL character. A circular structure is reported as such,
    not as a recursion error.
    """
    if isinstance(value, str):
        return (
            f"{path} contains a NUL character, which PostgreSQL cannot store"
            if "\x00" in value
            else None
        )
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r}, which JSON cannot represent"
    if isinstance(value, (list, tuple, dict)):
        if id(value) in _containing:
            return f"{path} contains itself (a circular reference)"
        containing = _containing | {id(value)}
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{path} has a non-string key {key!r}"
                if "\x00" in key:
                    return f"{path} has a key with a NUL character, which PostgreSQL cannot store"
                if (problem := json_problem(item, f"{path}[{key!r}]", containing)) is not None:
                    return problem
            return None
        for index, item in enumerate(value):
            if (problem := json_problem(item, f"{path}[{index}]", containing)) is not None:
                return problem
        return None
    return f"{path} is a {type(value).__name__}, which is not JSON-serialisable"
