"""`[[rooms]]`, `[media]` and `[conference]` in the server configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipline.core.uri import parse_uri
from sipline.server.config import ConfigError, load_config
from sipline.server.media_services.registry import ServiceRegistry
from sipline.transport.base import Target


def test_rooms_are_read() -> None:
    cfg = load_config(
        {
            "rooms": [
                {"name": "board", "pin": "0042", "max_participants": 4,
                 "moderators": ["sip:Alice@example.com"], "record": "board.wav"},
                {"name": "open"},
            ],
            "media": {"port": 5090},
            "conference": {"max_participants": 50},
        }
    )  # fmt: skip
    board, open_room = cfg.rooms
    assert (board.pin, board.max_participants, board.record) == ("0042", 4, Path("board.wav"))
    assert board.moderators == ("alice@example.com",)
    assert open_room.pin is None and open_room.max_participants is None
    assert cfg.media.port == 5090 and cfg.conference.max_participants == 50


@pytest.mark.parametrize(
    ("rooms", "message"),
    [
        ({"name": "a b"}, "rooms[0].name: must be letters"),
        ({"name": "x", "pin": 1234}, "rooms[0].pin: must be a string of 1 to 16 digits"),
        ({"name": "x", "pin": "12a"}, "rooms[0].pin: must be a string of 1 to 16 digits"),
        ({"name": "x", "max_participants": 0}, "rooms[0].max_participants: must be a positive"),
        ({"name": "x", "moderators": ["alice"]}, "rooms[0].moderators: must be a list"),
        ({"name": "x", "colour": "red"}, "rooms[0].colour: unknown key"),
    ],
)
def test_bad_rooms_name_the_key(rooms: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config({"rooms": [rooms]})


def test_a_room_listed_twice_and_a_bad_port() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        load_config({"rooms": [{"name": "a"}, {"name": "A"}]})
    with pytest.raises(ConfigError, match=r"media\.port: must be a port number"):
        load_config({"media": {"port": 70000}})


def test_the_registry_routes_only_service_users_once_the_host_is_known() -> None:
    registry = ServiceRegistry()
    registry.add_prefix("conference", "room-", lambda: _never)
    registry.add_users("voicemail", ("voicemail", "*98"), lambda: _never)
    room = parse_uri("sip:Room-x@example.com")
    assert registry.route(room) is None  # no host yet
    registry.target = Target("UDP", "127.0.0.1", 5090)
    assert registry.route(room) == registry.target
    assert registry.route(parse_uri("sip:*98@example.com")) == registry.target
    assert registry.route(parse_uri("sip:bob@example.com")) is None
    with pytest.raises(ValueError, match="registered already"):
        registry.add_users("voicemail", ("vm",), lambda: _never)


async def _never(call: object) -> None:
    raise AssertionError("not called")
