"""What messaging and presence keep in the store (schema versions 3, 6 and 11).

Stored messages (RFC 3428 store-and-forward), presence publications (RFC 3903),
per-user watcher rules (who may see a user's presence) and event subscriptions
(RFC 6665) live in the store, not in one process's memory, so that several server
processes sharing one database see the same state and a restart (or `kill -9`)
loses none of it. Times are wall-clock seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "MESSAGE_STATES",
    "WATCHER_DECISIONS",
    "ImStore",
    "NewMessage",
    "Publication",
    "StoredMessage",
    "SubscriptionRecord",
]

# A user's answer about one watcher: see their presence, or never.
WATCHER_DECISIONS = ("allow", "block")
# A stored message waits for delivery until a device refuses it for good.
MESSAGE_STATES = ("pending", "failed")


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A MESSAGE accepted for a user who had no registered device.

    `sender` and `recipient` are the From and To header values as received (with the
    sender's tag); `content_type` the Content-Type value with its parameters;
    `headers` the other end-to-end headers: those describing the body
    (Content-Encoding, Content-Disposition, ...) and Subject, Date, ...; `body` the
    body exactly as received (RFC 3428 §7: the body is end to end)."""

    aor: str
    sender: str
    recipient: str
    call_id: str
    content_type: str
    body: bytes
    received_at: float
    expires_at: float
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A stored message, in arrival order by `id`: waiting for delivery (`pending`),
    or refused for good by the recipient's device (`failed`, with the response in
    `failure`)."""

    id: int
    aor: str
    sender: str
    recipient: str
    call_id: str
    content_type: str
    body: bytes
    received_at: float
    expires_at: float
    headers: tuple[tuple[str, str], ...] = ()
    attempts: int = 0
    next_attempt_at: float = 0.0
    state: str = "pending"
    failure: str = ""


@dataclass(frozen=True, slots=True)
class Publication:
    """One event state published by one device (RFC 3903 §4.1: an entity tag names it)."""

    aor: str
    etag: str
    event: str
    content_type: str
    document: bytes
    expires_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """A subscription a notifier serves (RFC 6665 §4.2), enough to resume it after a
    restart: the dialog as JSON (`sipline.server.presence.dialogs`), its state, expiry,
    and the server process (`owner`) that notifies it."""

    id: str
    event: str
    resource: str
    watcher: str
    state: str
    expires_at: float
    dialog: str
    owner: str
    updated_at: float


class ImStore(Protocol):
    """Messaging and presence state."""

    # stored messages (RFC 3428 store-and-forward)
    def add_message(self, message: NewMessage) -> int:
        """Store a message; its id (ids grow with arrival)."""
        ...

    def pending_messages(self, aor: str, *, now: float, limit: int = 100) -> list[StoredMessage]:
        """Unexpired messages for `aor` still to deliver, oldest first."""
        ...

    def count_messages(self, aor: str, *, now: float) -> int:
        """How many unexpired messages wait for delivery to `aor`."""
        ...

    def list_messages(self, aor: str | None = None, *, now: float) -> list[StoredMessage]:
        """Unexpired messages of `aor` (every user's with None), pending or failed, by id."""
        ...

    def aors_with_messages(self, *, now: float) -> list[str]: ...

    def remove_message(self, message_id: int) -> bool:
        """Delivered: forget it. Whether it was there."""
        ...

    def defer_message(self, message_id: int, next_attempt_at: float) -> None:
        """A delivery attempt failed for now: count it and say when to try again."""
        ...

    def fail_message(self, message_id: int, failure: str, *, now: float) -> None:
        """The recipient refused the message for good (`failure`, e.g. "415 Unsupported
        Media Type"): it is kept, marked failed, and no longer delivered."""
        ...

    def purge_expired_messages(self, now: float) -> list[StoredMessage]:
        """Remove the messages whose expiry has passed; the ones removed."""
        ...

    def claim_delivery(self, aor: str, owner: str, *, now: float, lease_s: float) -> bool:
        """Take the right to deliver `aor`'s messages for `lease_s` seconds: True when
        nobody else holds it (so two processes never deliver the same message)."""
        ...

    def release_delivery(self, aor: str, owner: str) -> None: ...

    # publications (RFC 3903)
    def put_publication(self, publication: Publication, *, replaces: str | None = None) -> bool:
        """Insert `publication`; with `replaces`, atomically in place of that entity tag
        of the same aor and event, and False (nothing written) when it is gone."""
        ...

    def get_publication(self, aor: str, event: str, etag: str) -> Publication | None: ...

    def remove_publication(self, aor: str, event: str, etag: str) -> bool: ...

    def publications(self, aor: str, event: str, *, now: float) -> list[Publication]:
        """Unexpired publications, oldest first."""
        ...

    def purge_expired_publications(self, now: float) -> int: ...

    # watcher rules
    def set_watcher_rule(self, aor: str, watcher: str, decision: str, updated_at: float) -> None:
        """`decision` is one of `WATCHER_DECISIONS`; ValueError otherwise."""
        ...

    def remove_watcher_rule(self, aor: str, watcher: str) -> bool: ...

    def watcher_rules(self, aor: str) -> list[tuple[str, str]]:
        """(watcher, decision) of `aor`, ordered by watcher."""
        ...

    # subscriptions (RFC 6665)
    def save_subscription(self, record: SubscriptionRecord) -> None:
        """Insert or replace by id."""
        ...

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...

    def remove_subscription(self, subscription_id: str) -> bool: ...

    def list_subscriptions(
        self, *, owner: str | None = None, resources: Sequence[str] | None = None
    ) -> list[SubscriptionRecord]:
        """Subscriptions (of one owner, or on the given resources), ordered by id."""
        ...

    def beat(self, owner: str, now: float) -> None:
        """Process `owner` (NODE/WORKER) is alive at `now`: it holds its subscriptions."""
        ...

    def adopt_subscriptions(
        self, owner: str, *, silent_since: float, now: float, limit: int = 100
    ) -> list[SubscriptionRecord]:
        """Make `owner` the owner of up to `limit` subscriptions whose owner has not
        beaten since `silent_since` (a node killed, a worker index no longer run, an
        owner id from before nodes), in one write so that one process takes each;
        return them. Beats older than that are forgotten."""
        ...

    def im_marks(self) -> tuple[tuple[int, float], ...]:
        """(row count, latest change) of messages, publications, watcher rules and
        subscriptions: a process compares them to notice what others changed."""
        ...
