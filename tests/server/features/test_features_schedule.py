"""Schedules: parsing, window edges, overnight windows, DST transitions, overlaps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.server.features.schedule import (
    Schedule,
    ScheduleError,
    Window,
    first_overlap,
    load_zone,
    parse_date_ranges,
    parse_days,
    parse_windows,
)

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_parse_days_ranges_and_wrap() -> None:
    assert parse_days(["mon-fri"]) == frozenset({0, 1, 2, 3, 4})
    assert parse_days(["fri-mon"]) == frozenset({4, 5, 6, 0})
    assert parse_days(["sat", "sun"]) == frozenset({5, 6})
    assert parse_days(["mon,wed"]) == frozenset({0, 2})
    with pytest.raises(ScheduleError, match="monday"):
        parse_days(["monday"])
    with pytest.raises(ScheduleError, match="no days"):
        parse_days([])


def test_parse_windows() -> None:
    assert parse_windows(["09:00-17:30"]) == (Window(9 * 3600, 17 * 3600 + 1800),)
    assert parse_windows(["22:00-06:00"])[0].overnight
    assert parse_windows(["18:00-24:00"]) == (Window(18 * 3600, 86400),)
    for bad in ("25:00-26:00", "09:00", "9-17", "24:00-01:00", "10:00-10:00", "09:60-10:00"):
        with pytest.raises(ScheduleError):
            parse_windows([bad])


def test_parse_dates() -> None:
    (one, two) = parse_date_ranges(["2026-12-24", "2026-12-27..2027-01-02"])
    assert one.first == one.last == date(2026, 12, 24)
    assert date(2027, 1, 1) in two and date(2027, 1, 3) not in two
    with pytest.raises(ScheduleError, match="ends before"):
        parse_date_ranges(["2026-12-27..2026-12-24"])
    with pytest.raises(ScheduleError, match="not a date"):
        parse_date_ranges(["24.12.2026"])
    with pytest.raises(ScheduleError, match="at most"):
        parse_date_ranges(["2000-01-01..2030-01-01"])


def test_unknown_zone_is_named() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        load_zone("Mars/Olympus")
    with pytest.raises(ScheduleError):
        load_zone("../../etc/passwd")
    with pytest.raises(ScheduleError, match="Europe/Berlim"):
        Schedule("Europe/Berlim")


def test_window_edges_start_in_end_out() -> None:
    office = Schedule(BERLIN, parse_days(["mon-fri"]), parse_windows(["09:00-17:00"]))
    # Tuesday 2026-12-01, CET (UTC+1): 09:00 local is 08:00 UTC.
    assert not office.active(utc(2026, 12, 1, 7, 59, 59))
    assert office.active(utc(2026, 12, 1, 8, 0))
    assert office.active(utc(2026, 12, 1, 15, 59, 59))
    assert not office.active(utc(2026, 12, 1, 16, 0))
    # Saturday is not a weekday of the schedule.
    assert not office.active(utc(2026, 12, 5, 10, 0))
    # Epoch seconds work too.
    assert office.active(utc(2026, 12, 1, 8, 0).timestamp())


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Schedule().active(datetime(2026, 1, 1))


def test_office_hours_follow_daylight_saving() -> None:
    office = Schedule(BERLIN, parse_days(["mon-sun"]), parse_windows(["09:00-17:00"]))
    # Clocks go forward on 2026-03-29 at 01:00 UTC: 09:00 local is 08:00 UTC the day
    # before and 07:00 UTC that day.
    assert not office.active(utc(2026, 3, 28, 7, 30))
    assert office.active(utc(2026, 3, 29, 7, 30))
    assert not office.active(utc(2026, 3, 29, 15, 0))  # 17:00 CEST
    # Clocks go back on 2026-10-25 at 01:00 UTC.
    assert office.active(utc(2026, 10, 24, 7, 0))  # 09:00 CEST
    assert not office.active(utc(2026, 10, 25, 7, 0))  # 08:00 CET
    assert office.active(utc(2026, 10, 25, 8, 0))


def test_window_in_spring_gap_never_applies_and_repeated_hour_applies_twice() -> None:
    night = Schedule(BERLIN, windows=parse_windows(["02:00-03:00"]))
    # 2026-03-29: 02:00-03:00 local does not exist.
    assert not any(night.active(utc(2026, 3, 29, 0, m)) for m in range(0, 60, 5))
    assert not any(night.active(utc(2026, 3, 29, 1, m)) for m in range(0, 60, 5))
    # 2026-10-25: 02:00-03:00 local happens at 00:00-01:00 UTC (CEST) and 01:00-02:00 UTC (CET).
    assert night.active(utc(2026, 10, 25, 0, 30))
    assert night.active(utc(2026, 10, 25, 1, 30))
    assert not night.active(utc(2026, 10, 25, 2, 0))


def test_overnight_window_belongs_to_its_start_day() -> None:
    friday_night = Schedule("UTC", parse_days(["fri"]), parse_windows(["22:00-06:00"]))
    assert friday_night.active(utc(2026, 12, 4, 22, 0))  # Friday
    assert friday_night.active(utc(2026, 12, 5, 5, 59))  # Saturday morning
    assert not friday_night.active(utc(2026, 12, 5, 6, 0))
    assert not friday_night.active(utc(2026, 12, 5, 22, 30))  # Saturday night
    assert not friday_night.active(utc(2026, 12, 4, 3, 0))  # Friday morning: Thursday's


def test_dates_and_exclusions() -> None:
    (xmas,) = parse_date_ranges(["2026-12-24..2026-12-26"])
    holidays = Schedule(BERLIN, dates=(xmas,))
    assert holidays.active(utc(2026, 12, 23, 23, 0))  # 00:00 on the 24th in Berlin
    assert not holidays.active(utc(2026, 12, 26, 23, 0))  # the 27th in Berlin
    office = Schedule(
        BERLIN, parse_days(["mon-fri"]), parse_windows(["09:00-17:00"]), exclude=(xmas,)
    )
    assert not office.active(utc(2026, 12, 24, 10, 0))  # a Thursday, but a holiday
    assert office.active(utc(2026, 12, 23, 10, 0))


def test_first_overlap() -> None:
    today = date(2026, 12, 1)
    days = parse_days(["mon-fri"])
    office = Schedule(BERLIN, days, parse_windows(["09:00-17:00"]))
    evening = Schedule(BERLIN, days, parse_windows(["17:00-23:00"]))
    assert first_overlap(office, evening, today=today) is None
    late = Schedule(BERLIN, days, parse_windows(["16:00-18:00"]))
    at = first_overlap(office, late, today=today)
    assert at is not None and office.active(at) and late.active(at)
    assert at.astimezone(ZoneInfo(BERLIN)).hour == 16
    new_york = Schedule("America/New_York", days, parse_windows(["09:00-17:00"]))
    at = first_overlap(office, new_york, today=today)
    assert at is not None
    assert at.astimezone(ZoneInfo("America/New_York")).hour == 9
    weekend = Schedule(BERLIN, parse_days(["sat-sun"]))
    assert first_overlap(office, weekend, today=today) is None


def test_overlap_found_only_in_the_repeated_hour() -> None:
    # Second reading of 02:30 on the day clocks go back vs an interval in UTC terms.
    (day,) = parse_date_ranges(["2026-10-25"])
    berlin = Schedule(BERLIN, windows=parse_windows(["02:30-03:00"]), dates=(day,))
    utc_window = Schedule("UTC", windows=parse_windows(["01:20-01:45"]), dates=(day,))
    at = first_overlap(berlin, utc_window, today=date(2026, 10, 1))
    assert at == utc(2026, 10, 25, 1, 30)


ZONES = ["UTC", BERLIN, "America/New_York", "Australia/Sydney", "Asia/Kolkata"]


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    zone = draw(st.sampled_from(ZONES))
    days = frozenset(draw(st.sets(st.integers(0, 6), min_size=1)))
    n = draw(st.integers(0, 2))
    windows = []
    for _ in range(n):
        start = draw(st.integers(0, 47)) * 1800
        end = draw(st.integers(1, 48)) * 1800
        if start == end:
            end = (end + 1800) % 86400 or 86400
        windows.append(Window(start, end))
    return Schedule(zone, days, tuple(windows))


TODAY = date(2026, 3, 1)


@given(schedules(), schedules(), st.integers(0, 364 * 24 * 4))
def test_overlap_is_sound_and_complete(a: Schedule, b: Schedule, quarter_hours: int) -> None:
    found = first_overlap(a, b, today=TODAY)
    if found is not None:
        assert a.active(found) and b.active(found)
    t = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=15 * quarter_hours)
    if a.active(t) and b.active(t):
        assert found is not None and found <= t


@given(schedules(), st.integers(0, 400))
def test_every_interval_start_is_active_unless_it_does_not_exist(s: Schedule, day: int) -> None:
    first = TODAY + timedelta(days=day)
    tz = ZoneInfo(s.zone)
    for start in s.starts(first, first):
        local = start.astimezone(tz)
        wall = local.replace(tzinfo=None)
        # A local time inside a spring-forward gap comes back as another wall time.
        exists = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
        if exists and any(w.start_s == local.hour * 3600 + local.minute * 60 for w in s.windows):
            assert s.active(start)
