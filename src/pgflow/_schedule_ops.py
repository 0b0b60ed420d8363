"""Cron schedules in the database (sans-IO; see :mod:`pgflow._ops`): what ``Client``,
``AsyncClient``, the CLI and the worker's scheduler do with ``pgflow.schedules``.

A schedule fires the occurrences of its cron expression after ``active_since`` (its creation,
or the last change of its cron, time zone or flow, or its re-enabling). Each firing is one call
of ``pgflow.fire_schedule``, which inserts the occurrence and starts the run in one
transaction; the occurrence's primary key makes it start at most one run, whatever the number
of schedulers. After downtime, at most ``max_catch_up`` missed occurrences are fired, the most
recent ones; older ones are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from pgflow import sql as core_sql
from pgflow._cron import Cron, CronError
from pgflow._ops import Operation
from pgflow.client._operations import FlowRef, flow_slug, prepare_input
from pgflow.dsl._schedule import DEFAULT_MAX_CATCH_UP, ScheduleSpec, schedule_problem
from pgflow.errors import FlowNotFoundError, InvalidInputError, ScheduleNotFoundError

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored, with its next occurrence computed from the cron expression."""

    name: str
    flow_slug: str
    cron: str
    timezone: str
    input: Any
    enabled: bool
    max_catch_up: int
    created_at: datetime
    updated_at: datetime
    #: Occurrences at or before this moment are never fired.
    active_since: datetime
    #: The latest occurrence fired (None until the first).
    last_occurrence_at: datetime | None
    #: The next occurrence after now (None when disabled, or the cron text is unreadable).
    next_occurrence_at: datetime | None
    #: When an occurrence is due but not fired yet (no worker serves the flow, or it is
    #: late), the oldest such occurrence; else None.
    overdue_since: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Schedule:
        now: datetime = row["now"]
        cron = _stored_cron(row)
        upcoming = overdue = None
        if cron is not None and row["enabled"]:
            pending = cron.next_after(_cursor(row))
            upcoming = pending if pending > now else cron.next_after(now)
            overdue = pending if pending <= now else None
        return cls(
            name=row["schedule_name"],
            flow_slug=row["flow_slug"],
            cron=row["cron"],
            timezone=row["timezone"],
            input=row["input"],
            enabled=row["enabled"],
            max_catch_up=row["max_catch_up"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            active_since=row["active_since"],
            last_occurrence_at=row["last_occurrence_at"],
            next_occurrence_at=upcoming,
            overdue_since=overdue,
        )


@dataclass(frozen=True)
class FiringResult:
    """What one scheduler pass over a due schedule did."""

    name: str
    #: (occurrence, run id) of every occurrence this pass started a run for.
    fired: tuple[tuple[datetime, UUID], ...] = ()
    #: Missed occurrences not fired (beyond max_catch_up): the oldest and the newest of them.
    skipped: tuple[datetime, datetime] | None = None
    #: When the schedule is next due.
    next_occurrence_at: datetime | None = None
    #: False when the schedule was not due, or another scheduler was firing it.
    claimed: bool = True


def _stored_cron(row: dict[str, Any]) -> Cron | None:
    """The row's cron, or None when the text is unusable (written around the API)."""
    try:
        return Cron.parse(row["cron"], row["timezone"])
    except CronError:
        return None


def _cursor(row: dict[str, Any]) -> datetime:
    """Occurrences after this moment are still to fire."""
    last: datetime | None = row["last_occurrence_at"]
    since: datetime = row["active_since"]
    return since if last is None or last < since else last


def _set_next(row: dict[str, Any], cron: Cron | None, after: datetime) -> Operation[Schedule]:
    next_at = cron.next_after(after) if cron is not None and row["enabled"] else None
    rows = yield (
        core_sql.query("schedule_set_next"),
        {"name": row["schedule_name"], "next_occurrence_at": next_at},
    )
    return Schedule.from_row(rows[0])


def upsert_schedule(
    flow: FlowRef,
    cron: str,
    *,
    input: Any = None,
    name: str | None = None,
    timezone: str = "UTC",
    max_catch_up: int = DEFAULT_MAX_CATCH_UP,
    enabled: bool | None = True,
) -> Operation[Schedule]:
    """Create or replace the schedule ``name`` (default: the flow's slug). ``enabled=None``
    keeps the stored setting (what workers registering declared schedules use)."""
    slug = flow_slug(flow)
    chosen = slug if name is None else name
    problem, parsed = schedule_problem(chosen, cron, timezone, max_catch_up)
    if problem is not None:
        raise InvalidInputError(problem)
    assert parsed is not None
    payload = prepare_input(flow, input)
    try:
        rows = yield (
            core_sql.query("schedule_upsert"),
            {
                "name": chosen,
                "flow_slug": slug,
                "cron": parsed.expression,
                "timezone": timezone,
                "input": payload,
                "enabled": enabled,
                "max_catch_up": max_catch_up,
            },
        )
    except psycopg.errors.ForeignKeyViolation:
        raise FlowNotFoundError(
            f"flow {slug!r} does not exist (define it, or run ensure_flow), so it cannot be "
            "scheduled"
        ) from None
    row = rows[0]
    return (yield from _set_next(row, parsed, _cursor(row)))


def register_declared(flow: FlowRef, spec: ScheduleSpec) -> Operation[Schedule]:
    """Store a schedule declared in code, keeping an operator's enable/disable."""
    return (
        yield from upsert_schedule(
            flow,
            spec.cron,
            input=spec.input,
            name=spec.name,
            timezone=spec.timezone,
            max_catch_up=spec.max_catch_up,
            enabled=None,
        )
    )


def set_schedule_enabled(name: str, enabled: bool) -> Operation[Schedule]:
    rows = yield core_sql.query("schedule_set_enabled"), {"name": name, "enabled": enabled}
    if not rows:
        raise ScheduleNotFoundError(f"schedule {name!r} does not exist")
    row = rows[0]
    return (yield from _set_next(row, _stored_cron(row), _cursor(row)))


def delete_schedule(name: str) -> Operation[bool]:
    """Remove a schedule; False when there was none by that name."""
    rows = yield core_sql.query("schedule_delete"), {"name": name}
    return bool(rows)


def list_schedules(flows: Sequence[str] | None = None) -> Operation[list[Schedule]]:
    rows = yield (
        core_sql.query("schedule_list"),
        {"flow_slugs": list(flows) if flows is not None else None},
    )
    return [Schedule.from_row(r) for r in rows]


def get_schedule(name: str) -> Operation[Schedule]:
    for schedule in (yield from list_schedules()):
        if schedule.name == name:
            return schedule
    raise ScheduleNotFoundError(f"schedule {name!r} does not exist")


def due_schedules(flows: Sequence[str]) -> Operation[list[tuple[str, float]]]:
    """(name, seconds until due) of the enabled schedules of ``flows``, soonest first."""
    rows = yield core_sql.query("schedule_due"), {"flow_slugs": list(flows)}
    return [(r["schedule_name"], float(r["due_in"])) for r in rows]


def fire_due(name: str) -> Operation[FiringResult]:
    """Fire what is due of one schedule, in one transaction: the latest ``max_catch_up``
    occurrences since the last fired one, oldest first, then record when it is next due.
    Nothing happens when the schedule is not due, or another scheduler holds it."""
    rows = yield core_sql.query("schedule_claim_due"), {"name": name}
    if not rows:
        return FiringResult(name, claimed=False)
    row = rows[0]
    now: datetime = row["now"]
    cron = _stored_cron(row)
    if cron is None:
        raise InvalidInputError(
            f"schedule {name!r} has an unusable cron expression or time zone "
            f"({row['cron']!r}, {row['timezone']!r}); fix it with Client.schedule"
        )
    cursor = _cursor(row)
    occurrences = cron.latest(cursor, now, row["max_catch_up"])
    skipped = None
    if occurrences:
        first_missed = cron.next_after(cursor)
        if first_missed < occurrences[0]:
            skipped = (first_missed, cron.previous_at_or_before(occurrences[0] - _TICK))
    fired: list[tuple[datetime, UUID]] = []
    for occurrence in occurrences:
        started = yield core_sql.query("schedule_fire"), {"name": name, "scheduled_for": occurrence}
        if started[0]["run_id"] is not None:
            fired.append((occurrence, started[0]["run_id"]))
    updated = yield from _set_next(row, cron, now)
    return FiringResult(name, tuple(fired), skipped, updated.next_occurrence_at)
