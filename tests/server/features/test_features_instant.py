"""The instant of `sipline route explain --at`: ISO 8601 with `T` or a space, and a
zone name, `Z` or an offset; property-tested over instants, zones and spellings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sipline.server.features.instant import InstantError, parse_instant

ZONES = ["UTC", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "Australia/Adelaide",
         "Asia/Kathmandu", "Etc/GMT+1", "America/Argentina/Buenos_Aires", "Pacific/Chatham"]  # fmt: skip

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


def _unambiguous(local: datetime) -> bool:
    """Not in a DST fold: the wall time names one instant only."""
    return local.replace(fold=1 - local.fold).utcoffset() == local.utcoffset()


@given(instants, st.sampled_from(ZONES), st.sampled_from(["T", " ", "t", "  "]), st.booleans())
def test_a_zone_name_after_the_time(at: datetime, zone: str, sep: str, seconds: bool) -> None:
    local = at.astimezone(ZoneInfo(zone))
    assume(_unambiguous(local))
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    parsed = parse_instant(f"{local:%Y-%m-%d}{sep}{clock} {zone}", "Europe/Berlin")
    expected = at if seconds else at - timedelta(seconds=at.second)
    assert parsed.timestamp == expected.timestamp()
    assert parsed.label == f"{local:%Y-%m-%d %H:%M} {zone}"


@given(
    instants,
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    st.sampled_from(["{h}:{m}", "{h}{m}", " {h}:{m}"]),
    st.sampled_from(["T", " "]),
)
def test_an_offset(at: datetime, minutes: int, style: str, sep: str) -> None:
    tz = timezone(timedelta(minutes=minutes))
    local = at.astimezone(tz)
    sign = "-" if minutes < 0 else "+"
    h, m = f"{abs(minutes) // 60:02d}", f"{abs(minutes) % 60:02d}"
    offset = style.replace("{h}", sign + h).replace("{m}", m)
    parsed = parse_instant(f"{local:%Y-%m-%d}{sep}{local:%H:%M:%S}{offset}", "Asia/Tokyo")
    assert parsed.timestamp == at.timestamp()
    assert parsed.zone_label == f"{sign}{h}:{m}"


@given(instants, st.sampled_from(ZONES))
def test_without_a_zone_the_default_zone(at: datetime, zone: str) -> None:
    local = at.astimezone(ZoneInfo(zone))
    assume(_unambiguous(local))
    parsed = parse_instant(f"{local:%Y-%m-%dT%H:%M:%S}", zone)
    assert parsed.timestamp == at.timestamp() and parsed.zone_label == zone


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_our_error(text: str) -> None:
    try:
        parsed = parse_instant(text, "UTC")
    except InstantError:
        return
    assert parsed.at.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-12-07 19:30 UTC", "2026-12-07T19:30:00+00:00"),
        ("2026-12-07 19:30 utc", "2026-12-07T19:30:00+00:00"),
        ("2026-12-07T19:30Z", "2026-12-07T19:30:00+00:00"),
        ("2026-12-07T19:30 Asia/Tokyo", "2026-12-07T19:30:00+09:00"),
        ("2026-12-07 19:30 Europe/Berlin", "2026-12-07T19:30:00+01:00"),
        ("2026-12-07T19:30+01:00", "2026-12-07T19:30:00+01:00"),
        ("2026-12-07", "2026-12-07T00:00:00+00:00"),
    ],
)
def test_examples(text: str, iso: str) -> None:
    assert parse_instant(text, "UTC").at.isoformat() == iso


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("tomorrow", "is not YYYY-MM-DD"),
        ("2026-12-07 25:00", "hour must be in 0..23"),
        ("2026-12-07 19:30 Mars/Base", "unknown time zone 'Mars/Base'"),
        ("2026-12-07 19:30+24:00", "out of range"),
        ("2026-12-07 19:30 ../../etc/passwd", "is not YYYY-MM-DD"),
    ],
)
def test_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(InstantError, match=why):
        parse_instant(text, "UTC")
