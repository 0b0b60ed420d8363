"""The cron parser: fields, names, the day rule, macros, time zones, and properties checked
against a brute-force scan, minute by minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgflow._cron import Cron, CronError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def occurrences(expression: str, start: datetime, end: datetime, tz: str = "UTC") -> list[str]:
    zone = ZoneInfo(tz)
    return [
        o.astimezone(zone).strftime("%Y-%m-%d %H:%M %z")
        for o in Cron.parse(expression, tz).occurrences(start, end)
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/20 * * * *", {"minutes": {0, 20, 40}}),
        ("1-10/4 * * * *", {"minutes": {1, 5, 9}}),
        ("5/20 * * * *", {"minutes": {5, 25, 45}}),
        ("0,30 9-11 * * *", {"minutes": {0, 30}, "hours": {9, 10, 11}}),
        ("0 0 * JAN-mar,dec *", {"months": {1, 2, 3, 12}}),
        ("0 0 * * mon-FRI", {"weekdays": {1, 2, 3, 4, 5}}),
        ("0 0 * * 5-7", {"weekdays": {5, 6, 0}}),
        ("0 0 * * 7", {"weekdays": {0}}),
        ("0 0 * * sun", {"weekdays": {0}}),
    ],
)
def test_fields(expression: str, expected: dict[str, set[int]]) -> None:
    cron = Cron.parse(expression)
    for field, values in expected.items():
        assert getattr(cron, field) == values


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@ANNUALLY", "0 0 1 1 *"),
    ],
)
def test_macros_are_their_expressions(macro: str, fields: str) -> None:
    start, end = utc(2027, 12, 25), utc(2029, 2, 1)
    assert occurrences(macro, start, end) == occurrences(fields, start, end)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("60 * * * *", "minute field: 60 is out of range 0-59"),
        ("* 24 * * *", "hour field: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("* * * 13 *", "month field: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("*/0 * * * *", "minute field '*/0': the step must be a positive number"),
        ("* */x * * *", "hour field '*/x': the step must be a positive number"),
        ("10-5 * * * *", "minute field '10-5': the range runs backwards"),
        ("* * * foo *", "month field: 'foo' is not a number or a name (jan,"),
        ("* * * * funday", "day-of-week field: 'funday' is not a number or a name (sun,"),
        ("* * * jan-x *", "month field: 'x' is not a number"),
        ("1,,2 * * * *", "minute field '1,,2': empty list element"),
        ("-1 * * * *", "minute field: '' is not a number"),
        ("@fortnightly", "unknown cron macro '@fortnightly'"),
        ("0 0 30 2 *", "never matches: no month of the month field has day 30"),
        ("0 0 31 apr,jun *", "never matches"),
    ],
)
def test_errors_name_the_bad_field(expression: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        Cron.parse(expression)
    assert message in str(caught.value)


def test_unknown_time_zone() -> None:
    with pytest.raises(CronError, match="unknown time zone 'Mars/Olympus'"):
        Cron.parse("* * * * *", "Mars/Olympus")


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # November 2026: the 1st is a Sunday; Mondays are the 2nd, 9th, 16th...
    got = occurrences("0 0 1,15 * mon", utc(2026, 10, 31, 12), utc(2026, 11, 17))
    assert [g[:10] for g in got] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-09",
        "2026-11-15",
        "2026-11-16",
    ]
    # Only one restricted: that one decides; "*/1" is a restriction (not exactly "*").
    assert [g[:10] for g in occurrences("0 0 * * mon", utc(2026, 11, 1), utc(2026, 11, 17))] == [
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
    ]
    assert len(occurrences("0 0 */1 * mon", utc(2026, 11, 1), utc(2026, 11, 17))) == 16


def test_leap_day_and_sparse_schedules() -> None:
    cron = Cron.parse("0 12 29 feb *")
    assert cron.next_after(utc(2025, 3, 1)) == utc(2028, 2, 29, 12)
    assert cron.previous_at_or_before(utc(2028, 2, 29, 11, 59)) == utc(2024, 2, 29, 12)


def test_next_previous_and_latest() -> None:
    cron = Cron.parse("*/15 * * * *")
    assert cron.next_after(utc(2026, 1, 1, 10, 0)) == utc(2026, 1, 1, 10, 15)
    assert cron.next_after(utc(2026, 1, 1, 10, 14, 59)) == utc(2026, 1, 1, 10, 15)
    assert cron.previous_at_or_before(utc(2026, 1, 1, 10, 15)) == utc(2026, 1, 1, 10, 15)
    assert cron.previous_at_or_before(utc(2026, 1, 1, 10, 14, 59)) == utc(2026, 1, 1, 10, 0)
    assert cron.matches(utc(2026, 1, 1, 10, 45))
    assert not cron.matches(utc(2026, 1, 1, 10, 46))
    # (after, until]: the bounds are exclusive, inclusive.
    assert cron.latest(utc(2026, 1, 1, 10), utc(2026, 1, 1, 11), 10) == [
        utc(2026, 1, 1, 10, 15),
        utc(2026, 1, 1, 10, 30),
        utc(2026, 1, 1, 10, 45),
        utc(2026, 1, 1, 11),
    ]
    assert cron.latest(utc(2026, 1, 1, 10), utc(2026, 1, 1, 11), 2) == [
        utc(2026, 1, 1, 10, 45),
        utc(2026, 1, 1, 11),
    ]
    # A year of downtime costs two steps backwards, not 35 000 forwards.
    assert cron.latest(utc(2025, 1, 1), utc(2026, 1, 1, 10, 7), 1) == [utc(2026, 1, 1, 10)]
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.next_after(datetime(2026, 1, 1))


def test_time_zone_and_daylight_saving() -> None:
    # Spring forward in New York, 8 March 2026: 02:00 EST -> 03:00 EDT. The skipped 02:30
    # fires at 03:00; the skipped quarter hours of */15 collapse into that one occurrence.
    assert occurrences("30 2 * * *", utc(2026, 3, 6), utc(2026, 3, 10), "America/New_York") == [
        "2026-03-06 02:30 -0500",
        "2026-03-07 02:30 -0500",
        "2026-03-08 03:00 -0400",
        "2026-03-09 02:30 -0400",
    ]
    assert occurrences(
        "*/15 * * * *", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30), "America/New_York"
    ) == [
        "2026-03-08 01:45 -0500",
        "2026-03-08 03:00 -0400",
        "2026-03-08 03:15 -0400",
        "2026-03-08 03:30 -0400",
    ]
    # Fall back, 1 November 2026: 02:00 EDT -> 01:00 EST. 01:30 happens twice, fires once.
    assert occurrences("30 1 * * *", utc(2026, 10, 31), utc(2026, 11, 3), "America/New_York") == [
        "2026-10-31 01:30 -0400",
        "2026-11-01 01:30 -0400",
        "2026-11-02 01:30 -0500",
    ]
    hourly = occurrences("0 * * * *", utc(2026, 11, 1, 4), utc(2026, 11, 1, 8), "America/New_York")
    assert hourly == [
        "2026-11-01 01:00 -0400",
        "2026-11-01 02:00 -0500",
        "2026-11-01 03:00 -0500",
    ]
    # Backwards from inside the repeated hour finds the first pass's occurrences.
    cron = Cron.parse("*/20 * * * *", "America/New_York")
    assert cron.previous_at_or_before(utc(2026, 11, 1, 6, 30)) == utc(2026, 11, 1, 5, 40)
    paris = Cron.parse("0 9 * * *", "Europe/Paris")
    assert paris.next_after(utc(2026, 7, 1)) == utc(2026, 7, 1, 7)
    assert paris.next_after(utc(2026, 12, 1)) == utc(2026, 12, 1, 8)


# -- properties ----------------------------------------------------------------------------------
def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    ranges = st.tuples(number, number).map(lambda p: f"{min(p)}-{max(p)}")
    part = st.one_of(
        st.just("*"),
        number.map(str),
        ranges,
        st.tuples(st.sampled_from(["*"]) | ranges | number.map(str), st.integers(1, 13)).map(
            lambda p: f"{p[0]}/{p[1]}"
        ),
    )
    return st.lists(part, min_size=1, max_size=3).map(",".join)


expressions = st.tuples(
    _field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 7)
).map(" ".join)
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
zones = st.sampled_from(
    ["UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kolkata"]
)


def _values(text: str, low: int, high: int) -> set[int]:
    """An independent reading of one field, for the brute-force reference."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(x) for x in base.split("-"))
        else:
            start = int(base)
            end = high if step else start
        values.update(range(start, end + 1, int(step or 1)))
    return values


def _brute_force_match(expression: str, wall: datetime) -> bool:
    minute, hour, dom, month, dow = expression.split(" ")
    weekdays = {d % 7 for d in _values(dow, 0, 7)}
    in_month = wall.day in _values(dom, 1, 31)
    in_week = wall.isoweekday() % 7 in weekdays
    day = (in_month or in_week) if dom != "*" and dow != "*" else (in_month and in_week)
    return (
        wall.minute in _values(minute, 0, 59)
        and wall.hour in _values(hour, 0, 23)
        and wall.month in _values(month, 1, 12)
        and day
    )


@settings(max_examples=100, deadline=None)
@given(expressions, moments)
def test_no_occurrence_is_skipped_or_invented_in_utc(expression: str, start: datetime) -> None:
    start = start.replace(second=0, microsecond=0)
    end = start + timedelta(hours=36)
    scanned = []
    moment = start + timedelta(minutes=1)
    while moment <= end:
        if _brute_force_match(expression, moment):
            scanned.append(moment)
        moment += timedelta(minutes=1)
    cron = Cron.parse(expression)
    assert list(cron.occurrences(start, end)) == scanned
    assert cron.latest(start, end, 5) == scanned[-5:]


@settings(max_examples=100, deadline=None)
@given(expressions, moments, zones)
def test_consecutive_occurrences_in_any_zone(expression: str, start: datetime, tz: str) -> None:
    cron = Cron.parse(expression, tz)
    first = cron.next_after(start)
    second = cron.next_after(first)
    assert start < first < second
    # Going back from just before the second finds the first: nothing between them.
    assert cron.previous_at_or_before(second - timedelta(microseconds=1)) == first
    assert cron.previous_at_or_before(first) == first
    assert cron.matches(first)
    assert cron.matches(second)
    # Each occurrence is a matching wall-clock minute of its zone, or the end of a skipped
    # (daylight-saving) gap.
    for occurrence in (first, second):
        wall = occurrence.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        assert _brute_force_match(expression, wall) or _after_gap(occurrence, tz)


def _after_gap(occurrence: datetime, tz: str) -> bool:
    zone = ZoneInfo(tz)
    before = (occurrence - timedelta(minutes=1)).astimezone(zone).utcoffset()
    return before != occurrence.astimezone(zone).utcoffset()
