"""Five-field cron expressions, evaluated in a time zone, without any dependency.

Fields: ``minute hour day-of-month month day-of-week``. Each field takes ``*``, a number, a
range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (from ``a`` to the end), and lists of these
separated by commas. Months and weekdays also take names (``jan``..``dec``, ``sun``..``sat``,
any case); weekday ``7`` is Sunday like ``0``. Macros: ``@hourly``, ``@daily`` (``@midnight``),
``@weekly``, ``@monthly``, ``@yearly`` (``@annually``).

Days follow the classic cron rule: when both day-of-month and day-of-week are restricted
(neither is exactly ``*``), a day matches when *either* matches (``0 0 1 * mon``: the 1st of
each month and every Monday); otherwise the restricted one decides.

Time zones: an expression is matched against the wall-clock time of its zone (``UTC`` by
default). Daylight-saving changes:

* a local time that does not exist (skipped when clocks go forward) fires at the first instant
  after the jump: ``30 2 * * *`` in ``America/New_York`` fires at 03:00 on the day clocks move
  from 02:00 to 03:00, and the skipped minutes of ``*/5 * * * *`` collapse into that one
  occurrence;
* a local time that happens twice (when clocks go back) fires once, at its first occurrence.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_FIELDS = (
    # name, lowest, highest
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DAY_NAMES = {name: n for n, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NAMES = {"month": _MONTH_NAMES, "day-of-week": _DAY_NAMES}
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MINUTE = timedelta(minutes=1)


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message names the bad part."""


def _value(text: str, field: str, low: int, high: int) -> int:
    names = _NAMES.get(field, {})
    number = names.get(text.lower())
    if number is None:
        if not text.isdigit():
            raise CronError(f"{field} field: {text!r} is not a number" + _named(field))
        number = int(text)
    if not low <= number <= high:
        raise CronError(f"{field} field: {number} is out of range {low}-{high}")
    return number


def _named(field: str) -> str:
    names = _NAMES.get(field)
    return f" or a name ({', '.join(names)})" if names else ""


def _parse_field(text: str, field: str, low: int, high: int) -> frozenset[int]:
    if not text:
        raise CronError(f"{field} field is empty")
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field} field {text!r}: empty list element")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field} field {part!r}: the step must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, field, low, high), _value(last, field, low, high)
            if start > end:
                raise CronError(f"{field} field {part!r}: the range runs backwards")
        else:
            start = _value(base, field, low, high)
            end = high if slash else start  # "a/n": from a to the end, every n
        values.update(range(start, end + 1, step))
    if field == "day-of-week" and 7 in values:  # 7 is Sunday, like 0
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _check_timezone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Paris')"
        ) from None


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression in a time zone. Build it with :meth:`parse`."""

    expression: str
    timezone: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool
    zone: tzinfo

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Cron:
        """Parse ``expression``; :class:`CronError` names the bad field or time zone."""
        text = " ".join(expression.split())
        fields_text = MACROS.get(text.lower(), text)
        if fields_text.startswith("@"):
            raise CronError(f"unknown cron macro {text!r} (known: {', '.join(MACROS)})")
        parts = fields_text.split(" ")
        if len(parts) != len(_FIELDS):
            raise CronError(
                f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                f"got {len(parts)} in {expression!r}"
            )
        sets = [
            _parse_field(part, name, low, high)
            for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
        ]
        cron = cls(
            expression=text,
            timezone=timezone,
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=sets[4],
            days_restricted=parts[2] != "*",
            weekdays_restricted=parts[4] != "*",
            zone=_check_timezone(timezone),
        )
        if cron.days_restricted and not cron.weekdays_restricted:
            longest = max(_days_in_month(2000, m) for m in cron.months)  # 2000: Feb has 29
            if min(cron.days) > longest:
                raise CronError(
                    f"{expression!r} never matches: no month of the month field has day "
                    f"{min(cron.days)}"
                )
        return cron

    # -- matching wall-clock times (naive datetimes in the zone) --------------------------------
    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def _wall_at_or_after(self, wall: datetime) -> datetime:
        """The first matching wall-clock minute at or after ``wall`` (a whole minute)."""
        while True:
            if not self._day_matches(wall):
                wall = wall.replace(hour=0, minute=0) + timedelta(days=1)
            elif wall.hour not in self.hours:
                later = [h for h in self.hours if h > wall.hour]
                wall = (
                    wall.replace(hour=min(later), minute=0)
                    if later
                    else wall.replace(hour=0, minute=0) + timedelta(days=1)
                )
            elif wall.minute not in self.minutes:
                later = [m for m in self.minutes if m > wall.minute]
                wall = (
                    wall.replace(minute=min(later))
                    if later
                    else wall.replace(minute=0) + timedelta(hours=1)
                )
            else:
                return wall

    def _wall_at_or_before(self, wall: datetime) -> datetime:
        """The last matching wall-clock minute at or before ``wall`` (a whole minute)."""
        while True:
            if not self._day_matches(wall):
                wall = wall.replace(hour=23, minute=59) - timedelta(days=1)
            elif wall.hour not in self.hours:
                earlier = [h for h in self.hours if h < wall.hour]
                wall = (
                    wall.replace(hour=max(earlier), minute=59)
                    if earlier
                    else wall.replace(hour=23, minute=59) - timedelta(days=1)
                )
            elif wall.minute not in self.minutes:
                earlier = [m for m in self.minutes if m < wall.minute]
                wall = (
                    wall.replace(minute=max(earlier))
                    if earlier
                    else wall.replace(minute=59) - timedelta(hours=1)
                )
            else:
                return wall

    # -- wall-clock times <-> instants ------------------------------------------------------------
    def _instant(self, wall: datetime) -> datetime:
        """When a wall-clock minute happens (UTC): its first occurrence when repeated, the end
        of the gap when skipped. Non-decreasing in ``wall``, which the searches rely on."""
        instant = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == wall:
            return instant
        # Skipped: the first wall-clock minute after the gap that exists.
        after = wall + _MINUTE
        while (
            after.replace(tzinfo=self.zone)
            .astimezone(UTC)
            .astimezone(self.zone)
            .replace(tzinfo=None)
            != after
        ):
            after += _MINUTE
        return after.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def _wall(self, moment: datetime) -> datetime:
        """The wall-clock minute of ``moment`` in the zone (naive, seconds dropped)."""
        return moment.astimezone(self.zone).replace(second=0, microsecond=0, tzinfo=None, fold=0)

    # -- public API --------------------------------------------------------------------------------
    def matches(self, moment: datetime) -> bool:
        """Whether an occurrence happens exactly at ``moment`` (timezone-aware)."""
        return self.next_after(moment - timedelta(microseconds=1)) == moment

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (timezone-aware), in UTC."""
        _require_aware(moment)
        wall = self._wall(moment)
        while True:
            wall = self._wall_at_or_after(wall + _MINUTE)
            instant = self._instant(wall)
            if instant > moment:  # not so only for the repeated hour of a fall-back change
                return instant

    def previous_at_or_before(self, moment: datetime) -> datetime:
        """The last occurrence at or before ``moment`` (timezone-aware), in UTC."""
        _require_aware(moment)
        # In the second pass of a repeated hour the later wall-clock minutes of that hour
        # (first pass) happened before ``moment`` too: start the search after them.
        local = moment.astimezone(self.zone)
        offset_first = local.replace(fold=0).utcoffset() or timedelta(0)
        offset_now = local.utcoffset() or timedelta(0)
        wall = self._wall(moment) + max(offset_first - offset_now, timedelta(0))
        while True:
            wall = self._wall_at_or_before(wall)
            instant = self._instant(wall)
            if instant <= moment:
                return instant
            wall -= _MINUTE

    def occurrences(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Every occurrence in ``(after, until]``, oldest first."""
        moment = after
        while (moment := self.next_after(moment)) <= until:
            yield moment

    def latest(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """The ``limit`` most recent occurrences in ``(after, until]``, oldest first (searched
        backwards, so that a long gap costs nothing)."""
        found: list[datetime] = []
        moment = until
        while len(found) < limit:
            moment = self.previous_at_or_before(moment)
            if moment <= after:
                break
            found.append(moment)
            moment -= timedelta(microseconds=1)
        return found[::-1]


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {moment!r}")
