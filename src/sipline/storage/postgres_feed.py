"""The binding change feed of the PostgreSQL store: LISTEN on a dedicated connection.

A write to `bindings` sends `NOTIFY sipline_bindings, 'ORIGIN AOR'` in its own
transaction (`PostgresStore._bindings_changed`); PostgreSQL delivers it when, and only
if, that transaction commits, in commit order. So no table is read to learn what
changed, no sequence numbers can go missing between transactions committing out of
order, and a change this process made (its origin) is dropped here unread.

The listener counts the notifications it received: that count is the feed's "head".
`changes(after)` drains what arrived (a non-blocking read of the socket, on the store
thread, whenever the server polls) and returns the AORs others changed after `after`.
If the connection is lost, nothing says what was missed: the listener reconnects and
answers None, and the caller reloads every binding (as after a pruned SQLite feed).
"""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["CHANNEL", "BindingListener"]

CHANNEL = "sipline_bindings"


class BindingListener:
    def __init__(self, url: str, origin: str) -> None:
        self._url = url
        self._origin = origin
        self._conn: psycopg.Connection[Any] | None = None
        self.head = 0  # notifications received (and reconnections)
        self._reset_at = 0  # `head` at the last (re)connection: older positions are void
        self._pending: list[tuple[int, str]] = []  # (position, AOR) of others' changes

    def _connect(self) -> None:
        self.close()
        conn = psycopg.connect(self._url, autocommit=True)
        conn.execute(f"LISTEN {CHANNEL}")
        self._conn = conn
        self.head += 1
        self._reset_at = self.head
        self._pending.clear()

    def _drain(self) -> None:
        if self._conn is None or self._conn.closed:
            self._connect()
        assert self._conn is not None
        try:
            for note in self._conn.notifies(timeout=0):
                self.head += 1
                origin, _, aor = note.payload.partition(" ")
                if origin != self._origin:
                    self._pending.append((self.head, aor))
        except psycopg.OperationalError:
            self._connect()

    def feed_head(self) -> int:
        """The current position (listening from now on)."""
        self._drain()
        return self.head

    def changes(self, after: int) -> tuple[int, list[str] | None]:
        """(head, AORs others changed after `after`); None when the listener was
        reconnected since `after`: changes may have been missed."""
        self._drain()
        if after < self._reset_at:
            return self.head, None
        found = [aor for at, aor in self._pending if at > after]
        self._pending = [(at, aor) for at, aor in self._pending if at > after]
        return self.head, list(dict.fromkeys(found))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
