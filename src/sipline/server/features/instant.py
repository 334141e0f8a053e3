"""The instant of a call as people write it, for `sipline route explain --at`.

Accepted: an ISO 8601 date and time (ISO 8601 / RFC 3339 §5.6), with `T` or a space
between them, seconds optional, then optionally a zone: `Z`, an offset (`+01:00`,
`+0100`, `-05`), or an IANA zone name (`UTC`, `Asia/Tokyo`, `Europe/Berlin`),
separated by a space. Without a zone the instant is in `default_zone` (the callee's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sipline.server.features.schedule import ScheduleError, load_zone

__all__ = ["Instant", "InstantError", "parse_instant"]

FORMAT_HINT = "YYYY-MM-DD[ HH:MM[:SS]] [ZONE|±HH:MM]"

_DATE = r"(?P<date>\d{4}-\d{2}-\d{2})"
_TIME = r"(?P<time>\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)"
# The offset sticks to the time (RFC 3339 `time-offset`) or stands apart after a space.
_OFFSET = r"(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)"
_INSTANT = re.compile(
    rf"{_DATE}(?:(?:[Tt]|\s+){_TIME})?(?:\s*{_OFFSET}|\s+(?P<zone>[A-Za-z][A-Za-z0-9_+/-]*))?"
)


class InstantError(ValueError):
    """The text is no instant; the message says why, for one line on stderr."""


@dataclass(frozen=True, slots=True)
class Instant:
    at: datetime  # aware
    zone_label: str  # the zone as given (or the default's name)

    @property
    def timestamp(self) -> float:
        return self.at.timestamp()

    @property
    def label(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.zone_label}"


def _offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise InstantError(f"offset {text} is out of range (-23:59..+23:59)")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _format_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_instant(text: str, default_zone: str) -> Instant:
    """`text` as an aware instant; `InstantError` (or `ScheduleError` for an unknown
    zone name) when it is none."""
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        raise InstantError(f"{text!r} is not {FORMAT_HINT}")
    clock = match["time"] or "00:00"
    try:
        naive = datetime.fromisoformat(f"{match['date']} {clock.replace(',', '.')}")
    except ValueError as exc:
        raise InstantError(f"{text!r}: {exc}") from None
    if match["offset"] is not None:
        tz = _offset(match["offset"])
        offset = match["offset"]
        label = "UTC" if offset in ("Z", "z") else _format_offset(tz.utcoffset(None))
        return Instant(naive.replace(tzinfo=tz), label)
    name = match["zone"] or default_zone
    if name.upper() in ("UTC", "GMT", "Z"):
        name = "UTC"
    try:
        zone = load_zone(name)
    except ScheduleError as exc:
        raise InstantError(f"{text!r}: {exc}") from None
    return Instant(naive.replace(tzinfo=zone), name)
