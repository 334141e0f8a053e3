"""`[[rooms]]`: conference rooms configured ahead (README "Conference rooms").

A room not listed is created when its first participant calls `sip:room-NAME@domain`,
with no PIN and the `[conference] max_participants` limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ROOM_NAME", "ROOM_PREFIX", "RoomConfig", "parse_rooms"]

ROOM_PREFIX = "room-"  # sip:room-NAME@domain
# What may follow "room-" in the user part: letters, digits, '-', '_', '.'.
ROOM_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEYS = ("name", "pin", "max_participants", "moderators", "record")


@dataclass(frozen=True, slots=True)
class RoomConfig:
    name: str
    pin: str | None = None
    max_participants: int | None = None  # None: [conference] max_participants
    moderators: tuple[str, ...] = ()  # AORs (user@domain) allowed to kick and mute
    record: Path | None = None  # a WAV file of the mix


def parse_rooms(value: Any) -> list[RoomConfig]:
    # Raises the server configuration's error type (a ValueError too), imported here
    # lazily: apps.config imports this module.
    from sipline.server.config import ConfigError  # noqa: PLC0415

    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError("rooms: must be an array of tables ([[rooms]])")
    rooms: list[RoomConfig] = []
    for i, body in enumerate(value):
        key = f"rooms[{i}]"
        for name in body:
            if name not in _KEYS:
                raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(_KEYS)})")
        name = body.get("name")
        if not isinstance(name, str) or not ROOM_NAME.fullmatch(name):
            raise ConfigError(f"{key}.name: must be letters, digits, '.', '_' or '-', not {name!r}")
        if any(r.name.lower() == name.lower() for r in rooms):
            raise ConfigError(f"{key}.name: room {name!r} is listed twice")
        pin = body.get("pin")
        if pin is not None and (not isinstance(pin, str) or not pin.isdigit() or len(pin) > 16):
            raise ConfigError(f"{key}.pin: must be a string of 1 to 16 digits, not {pin!r}")
        limit = body.get("max_participants")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise ConfigError(f"{key}.max_participants: must be a positive integer, not {limit!r}")
        mods = body.get("moderators", [])
        if not isinstance(mods, list) or not all(isinstance(m, str) and "@" in m for m in mods):
            raise ConfigError(f"{key}.moderators: must be a list of user@domain, not {mods!r}")
        record = body.get("record")
        if record is not None and (not isinstance(record, str) or not record):
            raise ConfigError(f"{key}.record: must be a file path, not {record!r}")
        rooms.append(
            RoomConfig(
                name=name,
                pin=pin,
                max_participants=limit,
                moderators=tuple(m.removeprefix("sip:").lower() for m in mods),
                record=Path(record) if record else None,
            )
        )
    return rooms
