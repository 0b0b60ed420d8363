"""Schedules declared with a flow: ``Flow(..., schedule="*/5 * * * *")`` or
``flow.schedule("0 3 * * *", input=..., name="nightly")``. Workers serving the flow register
them in ``pgflow.schedules`` when they start (with ``ensure_flows``) and fire them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pgflow._cron import Cron, CronError

#: Schedule names: letters, digits and ``_ . : -``, at most 128 characters.
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: Default and bounds of ``max_catch_up``: how many missed occurrences are fired at once.
DEFAULT_MAX_CATCH_UP = 1
MAX_CATCH_UP_LIMIT = 1000


def schedule_problem(
    name: str, cron: str, timezone: str, max_catch_up: int
) -> tuple[str | None, Cron | None]:
    """(what is wrong, None) or (None, the parsed cron): one place for the rules that both a
    declaration and a client call check."""
    if not isinstance(name, str) or not SCHEDULE_NAME.match(name):
        return (
            f"schedule name {name!r} is invalid: use 1-128 letters, digits, '_', '.', ':' or '-'",
            None,
        )
    if isinstance(max_catch_up, bool) or not isinstance(max_catch_up, int):
        return f"schedule {name!r}: max_catch_up must be an integer, got {max_catch_up!r}", None
    if not 1 <= max_catch_up <= MAX_CATCH_UP_LIMIT:
        return (
            f"schedule {name!r}: max_catch_up must be between 1 and {MAX_CATCH_UP_LIMIT}, "
            f"got {max_catch_up}",
            None,
        )
    try:
        return None, Cron.parse(cron, timezone)
    except CronError as exc:
        return f"schedule {name!r}: {exc}", None


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as declared in code (checked when declared; stored by the worker)."""

    name: str
    cron: str
    input: Any = None
    timezone: str = "UTC"
    max_catch_up: int = DEFAULT_MAX_CATCH_UP
