"""`[media]`, `[conference]` and `[[rooms]]`: the in-process media host and the
conference rooms configured ahead (README "Conference rooms").

A room not listed is created when its first participant calls `sip:room-NAME@domain`,
with no PIN and the `[conference] max_participants` limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipline.server.config_values import (
    ConfigError,
    boolean,
    port,
    pos_int,
    setting,
    table_list,
)

__all__ = [
    "ROOM_NAME",
    "ROOM_PREFIX",
    "ConferenceSection",
    "MediaSection",
    "RoomConfig",
    "parse_rooms",
]

ROOM_PREFIX = "room-"  # sip:room-NAME@domain
# What may follow "room-" in the user part: letters, digits, '-', '_', '.'.
ROOM_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEYS = ("name", "pin", "max_participants", "moderators", "record")


@dataclass(frozen=True, slots=True)
class MediaSection:
    """[media]: the in-process media host."""

    enabled: bool = setting(True, boolean)
    port: int = setting(0, port)  # its loopback UDP port (0: a free one)


@dataclass(frozen=True, slots=True)
class ConferenceSection:
    """[conference]"""

    max_participants: int = setting(20, pos_int)


@dataclass(frozen=True, slots=True)
class RoomConfig:
    name: str
    pin: str | None = None
    max_participants: int | None = None  # None: [conference] max_participants
    moderators: tuple[str, ...] = ()  # AORs (user@domain) allowed to kick and mute
    record: Path | None = None  # a WAV file of the mix


def parse_rooms(value: Any) -> tuple[RoomConfig, ...]:
    rooms: list[RoomConfig] = []
    for key, body in table_list(value, "rooms", _KEYS):
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
    return tuple(rooms)
