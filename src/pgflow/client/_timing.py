"""Deadlines and scheduling times, shared by both clients."""

from __future__ import annotations

import math
import time
from datetime import datetime

from pgflow.errors import InvalidInputError


def deadline_after(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if timeout < 0 or math.isnan(timeout):
        raise InvalidInputError(f"timeout must be a non-negative number of seconds, got {timeout}")
    return time.monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def check_when(when: datetime | float) -> datetime | float:
    """A schedule time must be timezone-aware; a delay a finite number of seconds >= 0."""
    if isinstance(when, datetime):
        if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
            raise InvalidInputError(
                f"enqueue_at needs a timezone-aware datetime, got naive {when.isoformat()} "
                "(use datetime.now(timezone.utc) or attach a tzinfo)"
            )
        return when
    if not math.isfinite(when) or when < 0:
        raise InvalidInputError(f"the delay must be a finite number of seconds >= 0, got {when}")
    return when
