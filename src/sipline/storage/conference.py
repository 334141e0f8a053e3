"""Conference rooms in the server's database: what the media host publishes about its
rooms (read by `sipline conference list/show`) and the commands the CLI queues for it
(`kick`, `mute`, `unmute`), which the host polls.

Two tables beside the store's own, created on first use (`IF NOT EXISTS`) over a
connection of their own: they hold run-time state only (cleared when the host
starts), so they need no schema migration, and the CLI and every worker reach them
through the database file they already share. Each room row names the node whose
host holds the room (`host`): with several nodes on one database, a host clears and
takes the commands of its own rooms only. Tables from before that column are run-time
state too: they are dropped and made again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipline.storage.base import StoreError

__all__ = ["COMMANDS", "ConferenceStore", "RoomCommand", "RoomState"]

COMMANDS = ("kick", "mute", "unmute")

# A command for a room no host holds is dropped after this long.
COMMAND_TTL_S = 60.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS conference_rooms (
        host TEXT NOT NULL, name TEXT NOT NULL, members TEXT NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (host, name))""",
    """CREATE TABLE IF NOT EXISTS conference_commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, action TEXT NOT NULL,
        member INTEGER NOT NULL, created_at REAL NOT NULL)""",
)


@dataclass(frozen=True, slots=True)
class RoomState:
    name: str
    members: list[dict[str, Any]]  # number, who, codec, muted, moderator, joined_at
    updated_at: float
    host: str = ""  # the node holding the room (server/node.py)


@dataclass(frozen=True, slots=True)
class RoomCommand:
    id: int
    room: str
    action: str
    member: int


class ConferenceStore:
    """The conference tables, seen by the media host of node `host` (or the CLI)."""

    def __init__(self, path: str | Path, *, host: str = "", timeout_s: float = 5.0) -> None:
        self._lock = threading.Lock()
        self.host = host
        try:
            self._db = sqlite3.connect(
                str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            columns = self._db.execute("PRAGMA table_info(conference_rooms)").fetchall()
            if columns and "host" not in {c[1] for c in columns}:
                self._db.execute("DROP TABLE conference_rooms")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the conference tables in {path}: {exc}") from None

    def close(self) -> None:
        with self._lock:  # not while a poll runs on another thread
            self._db.close()

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"conference tables: {exc}") from None

    # -- the media host's side ------------------------------------------------------------------
    def reset(self) -> None:
        """At start: our rooms of a previous run are gone, and so are their commands
        (another node's rooms and commands stay)."""
        self._run(
            "DELETE FROM conference_commands WHERE room IN"
            " (SELECT name FROM conference_rooms WHERE host = ?)",
            (self.host,),
        )
        self._run("DELETE FROM conference_rooms WHERE host = ?", (self.host,))

    def publish(self, name: str, members: list[dict[str, Any]]) -> None:
        if members:
            self._run(
                "INSERT OR REPLACE INTO conference_rooms VALUES (?, ?, ?, ?)",
                (self.host, name, json.dumps(members), time.time()),
            )
        else:
            self._run("DELETE FROM conference_rooms WHERE host = ? AND name = ?", (self.host, name))

    def take_commands(self) -> list[RoomCommand]:
        """The commands for our rooms (and drop those no host took in time)."""
        self._run(
            "DELETE FROM conference_commands WHERE created_at < ?",
            (time.time() - COMMAND_TTL_S,),
        )
        rows = self._run(
            "DELETE FROM conference_commands WHERE room IN"
            " (SELECT name FROM conference_rooms WHERE host = ?)"
            " RETURNING id, room, action, member",
            (self.host,),
        )
        return sorted(
            (RoomCommand(int(i), r, a, int(m)) for i, r, a, m in rows), key=lambda c: c.id
        )

    # -- the command line's side ----------------------------------------------------------------
    def rooms(self) -> list[RoomState]:
        rows = self._run(
            "SELECT name, members, updated_at, host FROM conference_rooms ORDER BY name, host"
        )
        return [RoomState(n, json.loads(m), float(u), h) for n, m, u, h in rows]

    def room(self, name: str) -> RoomState | None:
        for state in self.rooms():
            if state.name.lower() == name.lower():
                return state
        return None

    def queue(self, room: str, action: str, member: int) -> None:
        if action not in COMMANDS:
            raise ValueError(f"unknown conference command {action!r}")
        self._run(
            "INSERT INTO conference_commands (room, action, member, created_at) VALUES (?, ?, ?, ?)",
            (room, action, member, time.time()),
        )
