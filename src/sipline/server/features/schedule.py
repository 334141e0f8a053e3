"""Weekly schedules with date ranges and holidays, evaluated in an IANA time zone.

A `Schedule` is a set of instants: the local days it applies on (weekdays, inside
the date ranges if any, outside the excluded dates) and, on each such day, the
local time windows (the whole day when none). A window that ends at or before it
starts runs past midnight and belongs to the day it starts on. Everything is local
wall time in `zone`, so "09:00-17:00 Europe/Berlin" follows daylight saving time:
a window whose start falls into a spring-forward gap starts when the clocks jump.

Pure: instants come in as aware datetimes (or epoch seconds), nothing reads a clock.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache

__all__ = [
    "DAY_NAMES",
    "DateRange",
    "Schedule",
    "ScheduleError",
    "Window",
    "first_overlap",
    "load_zone",
    "parse_date_ranges",
    "parse_days",
    "parse_windows",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SECONDS = 86400
_MAX_RANGE_DAYS = 3700  # about ten years: a larger range is a typo, not a schedule
_HORIZON_DAYS = 372  # a year and a week covers every weekday under every DST rule
_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule cannot be read; the message says which part and why."""


@cache
def _zone(name: str) -> tzinfo:
    return zoneinfo.ZoneInfo(name)


def load_zone(name: str) -> tzinfo:
    """The IANA zone `name`, or `ScheduleError` naming it."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ScheduleError(f"unknown time zone {name!r}")
    try:
        return _zone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None


@dataclass(frozen=True, slots=True)
class Window:
    """Seconds after local midnight; `end_s <= start_s` runs past midnight."""

    start_s: int
    end_s: int

    @property
    def overnight(self) -> bool:
        return self.end_s <= self.start_s

    def __str__(self) -> str:
        return f"{_hhmm(self.start_s)}-{_hhmm(self.end_s)}"


@dataclass(frozen=True, slots=True)
class DateRange:
    """Local dates, both ends included."""

    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


@dataclass(frozen=True, slots=True)
class Schedule:
    zone: str = "UTC"
    days: frozenset[int] = frozenset(range(7))  # 0 = Monday
    windows: tuple[Window, ...] = ()  # empty: the whole day
    dates: tuple[DateRange, ...] = ()  # empty: any date
    exclude: tuple[DateRange, ...] = ()
    _tz: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tz", load_zone(self.zone))

    # -- membership ------------------------------------------------------------------------
    def applies_on(self, day: date) -> bool:
        """Whether windows starting on local `day` count."""
        if day.weekday() not in self.days:
            return False
        if self.dates and not any(day in r for r in self.dates):
            return False
        return not any(day in r for r in self.exclude)

    def active(self, at: datetime | float) -> bool:
        """Is the instant `at` (aware datetime, or epoch seconds) inside the schedule?"""
        local = _as_utc(at).astimezone(self._tz)
        day = local.date()
        t = local.hour * 3600 + local.minute * 60 + local.second
        if not self.windows:
            return self.applies_on(day)
        for w in self.windows:
            if w.overnight:
                if (t >= w.start_s and self.applies_on(day)) or (
                    t < w.end_s and self.applies_on(day - timedelta(days=1))
                ):
                    return True
            elif w.start_s <= t < w.end_s and self.applies_on(day):
                return True
        return False

    # -- interval starts, for overlap checks -------------------------------------------------
    def starts(self, first: date, last: date) -> Iterator[datetime]:
        """The UTC instants where an interval of the schedule may begin, for windows
        starting on local days `first`..`last`. Both readings of an ambiguous local
        time (the hour repeated when clocks go back) are given."""
        windows = sorted(self.windows, key=lambda w: w.start_s) or [Window(0, _DAY_SECONDS)]
        day = first
        while day <= last:
            if self.applies_on(day):
                for w in windows:
                    at = datetime.combine(day, _time_of(w.start_s))
                    for fold in (0, 1):
                        yield at.replace(tzinfo=self._tz, fold=fold).astimezone(UTC)
            day += timedelta(days=1)

    def span(self, today: date) -> tuple[date, date]:
        """The local days worth enumerating: the date ranges, else a year from `today`."""
        if self.dates:
            return min(r.first for r in self.dates), max(r.last for r in self.dates)
        return today - timedelta(days=1), today + timedelta(days=_HORIZON_DAYS)

    def describe(self) -> str:
        parts = []
        if self.days != frozenset(range(7)):
            parts.append(",".join(DAY_NAMES[d] for d in sorted(self.days)))
        parts.append(" ".join(str(w) for w in self.windows) if self.windows else "all day")
        if self.dates:
            parts.append("on " + ", ".join(str(r) for r in self.dates))
        if self.exclude:
            parts.append("except " + ", ".join(str(r) for r in self.exclude))
        parts.append(self.zone)
        return " ".join(parts)


def first_overlap(a: Schedule, b: Schedule, *, today: date) -> datetime | None:
    """The first instant (UTC) at which both schedules apply, or None.

    Two unions of half-open intervals meet iff the later start of some meeting pair
    lies inside both; so checking every interval start of each against the other is
    complete (both DST readings of each start are included, see `Schedule.starts`).
    """
    a_first, a_last = a.span(today)
    b_first, b_last = b.span(today)
    first, last = max(a_first, b_first), min(a_last, b_last)
    if first > last:
        return None
    # A window may start the day before and run past midnight into the common span,
    # and the two zones may disagree about the date by a day.
    first, last = first - timedelta(days=1), last + timedelta(days=1)
    found: list[datetime] = []
    for one, other in ((a, b), (b, a)):
        for start in one.starts(first, last):
            if one.active(start) and other.active(start):
                found.append(start)
                break
    return min(found) if found else None


# -- parsing ---------------------------------------------------------------------------------
def parse_days(values: Iterable[str]) -> frozenset[int]:
    """`["mon-fri", "sun"]` -> {0, 1, 2, 3, 4, 6}; ranges may wrap (`fri-mon`)."""
    days: set[int] = set()
    for raw in values:
        for item in str(raw).lower().replace(" ", "").split(","):
            first, _, last = item.partition("-")
            if first not in DAY_NAMES or (last and last not in DAY_NAMES):
                raise ScheduleError(f"{raw!r} is not a day or day range (mon..sun, e.g. mon-fri)")
            i, j = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
            while True:
                days.add(i)
                if i == j:
                    break
                i = (i + 1) % 7
    if not days:
        raise ScheduleError("no days given")
    return frozenset(days)


def parse_windows(values: Iterable[str]) -> tuple[Window, ...]:
    """`["09:00-12:00", "22:00-06:00"]`; 24:00 is the end of the day."""
    windows = []
    for raw in values:
        first, sep, last = str(raw).replace(" ", "").partition("-")
        if not sep:
            raise ScheduleError(f"{raw!r} is not a time window such as 09:00-17:00")
        start, end = _seconds(first, raw), _seconds(last, raw)
        if start == _DAY_SECONDS:
            raise ScheduleError(f"{raw!r}: a window cannot start at 24:00")
        if start == end:
            raise ScheduleError(f"{raw!r}: a window must not start and end at the same time")
        windows.append(Window(start, end))
    return tuple(windows)


def parse_date_ranges(values: Iterable[str]) -> tuple[DateRange, ...]:
    """`["2026-12-24", "2026-12-27..2027-01-02"]` (ISO dates, both ends included)."""
    ranges = []
    for raw in values:
        first_s, sep, last_s = str(raw).replace(" ", "").partition("..")
        try:
            first = date.fromisoformat(first_s)
            last = date.fromisoformat(last_s) if sep else first
        except ValueError:
            raise ScheduleError(
                f"{raw!r} is not a date or date range (YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)"
            ) from None
        if last < first:
            raise ScheduleError(f"{raw!r}: the range ends before it starts")
        if (last - first).days > _MAX_RANGE_DAYS:
            raise ScheduleError(f"{raw!r}: a date range may span at most {_MAX_RANGE_DAYS} days")
        ranges.append(DateRange(first, last))
    return tuple(ranges)


def _seconds(text: str, raw: object) -> int:
    m = _HHMM.match(text)
    if m is None or (m.group(1) == "24" and m.group(2) != "00"):
        raise ScheduleError(f"{raw!r}: {text!r} is not a time (HH:MM, 00:00 to 24:00)")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60


def _time_of(seconds: int) -> time:
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60)


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"


def _as_utc(at: datetime | float) -> datetime:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("a naive datetime has no instant; give a time zone")
        return at
    return datetime.fromtimestamp(at, UTC)
