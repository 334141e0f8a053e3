"""What the server keeps: accounts (domains, users, HA1s) and the location service.

These are protocols, so a networked backend can sit beside the embedded SQLite one;
`tests/storage/test_contract.py` runs the same suite against every backend. The
stores are synchronous: the server reaches them through `AsyncStore`
(`sipline.storage.aio`), which keeps them off the event loop.

Passwords are never stored: `add_user` and `set_password` derive the digest HA1
for every algorithm we support (RFC 7616 §3.4.2), keyed by the realm, which is the
domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from sipline.core.auth import ALGORITHMS, ha1
from sipline.storage.im import ImStore
from sipline.storage.ops import OpsStore
from sipline.storage.voicemail import VoicemailStore

__all__ = [
    "HA1_ALGORITHMS",
    "AccountStore",
    "Binding",
    "DeviceInfo",
    "DuplicateError",
    "LocationStore",
    "NotFoundError",
    "RouteStore",
    "SharedStateStore",
    "Store",
    "StoreError",
    "User",
    "compute_ha1s",
    "split_address",
]

# Base algorithms (the "-sess" variants share the plain HA1, RFC 7616 §3.4.2);
# SHA-512-256 only where hashlib has the real function.
HA1_ALGORITHMS: tuple[str, ...] = tuple(
    name for name in ("MD5", "SHA-256", "SHA-512-256") if name in ALGORITHMS
)


class StoreError(Exception):
    """The store cannot do what was asked; the message is fit for a person to read."""


class StoreBusyError(StoreError):
    """The store's queue is full: the call was refused at once, nothing was done (the
    caller should answer 503 with Retry-After, RFC 3261 §21.5.4)."""


class DuplicateError(StoreError):
    """The domain or user exists already."""


class NotFoundError(StoreError):
    """No such domain or user."""


@dataclass(frozen=True, slots=True)
class User:
    """An account: `username@domain`, with one HA1 per algorithm (never the password)."""

    username: str
    domain: str
    ha1: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.username}@{self.domain}"


@dataclass(frozen=True, slots=True)
class Binding:
    """One contact bound to an address-of-record (RFC 3261 §10.3).

    `aor` is the canonical `user@domain` (§10.3 step 5); `contact` the Contact URI
    as received, URI parameters and headers included; `params` the other Contact
    header parameters as written (feature tags, `+sip.instance`, `reg-id`; never
    `expires` or `q`, which have their own fields). Times are wall-clock seconds.
    `received` is where the REGISTER came from, "transport:host:port", kept when it
    differs from the Contact so requests can reach a UA behind NAT. `flow` is the
    URI of the node holding the flow the REGISTER came on, with its flow token
    (RFC 5626 §5.2, sipline.core.flow_token) in the user part: which node and which
    worker process of it can send to the device (docs/architecture.md "Workers").
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    q: float | None = None
    path: tuple[str, ...] = ()
    instance: str | None = None  # +sip.instance (RFC 5626 §4.1)
    reg_id: int | None = None  # reg-id (RFC 5626 §4.2)
    received: str | None = None
    user_agent: str | None = None
    params: str = ""
    updated_at: float = 0.0
    flow: str | None = None

    def remaining_s(self, now: float) -> int:
        """Whole seconds left, never negative (what the 200 lists as `expires`)."""
        return max(0, int(self.expires_at - now + 0.5))


class AccountStore(Protocol):
    """Domains, users and their HA1s. Domains are lower-case; user names are kept as
    given (the user part of a SIP URI is case-sensitive, RFC 3261 §19.1.4)."""

    def add_domain(self, name: str) -> None:
        """Add a domain; `DuplicateError` if it exists."""
        ...

    def list_domains(self) -> list[str]: ...

    def has_domain(self, name: str) -> bool: ...

    def remove_domain(self, name: str) -> None:
        """Remove a domain; `NotFoundError` if absent, `StoreError` if it has users."""
        ...

    def add_user(self, username: str, domain: str, password: str) -> User:
        """Add `username@domain`; `NotFoundError` for an unknown domain,
        `DuplicateError` for an existing user."""
        ...

    def get_user(self, username: str, domain: str) -> User | None: ...

    def list_users(self, domain: str | None = None) -> list[User]: ...

    def count_users(self) -> int:
        """How many users there are (without reading them all)."""
        ...

    def set_password(self, username: str, domain: str, password: str) -> None:
        """Replace the HA1s; `NotFoundError` for an unknown user."""
        ...

    def remove_user(self, username: str, domain: str) -> None:
        """`NotFoundError` for an unknown user."""
        ...

    def lookup_ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        """The stored HA1 for a base algorithm name, or None (fits `Ha1Lookup`)."""
        ...

    def credentials_version(self) -> int:
        """A number that changes whenever any stored HA1 is added, changed or removed
        (by any process): an HA1 cache is valid while it stays the same."""
        ...


class LocationStore(Protocol):
    """Bindings keyed by (aor, contact)."""

    def update_bindings(
        self, aor: str, *, upsert: Sequence[Binding] = (), remove: Sequence[str] = ()
    ) -> None:
        """Remove the `remove` contacts, then insert or replace `upsert`, atomically:
        all or nothing (§10.3 step 7)."""
        ...

    def upsert_binding(self, binding: Binding) -> None: ...

    def remove_binding(self, aor: str, contact: str) -> bool:
        """Whether a binding was removed."""
        ...

    def remove_bindings(self, aor: str) -> int:
        """Remove every binding of `aor`; how many there were."""
        ...

    def list_bindings(self, aor: str) -> list[Binding]:
        """The bindings of `aor`, expired ones included, in insertion order."""
        ...

    def all_bindings(self) -> list[Binding]: ...

    def iter_bindings(self, page: int = 1000) -> Iterator[Binding]:
        """Every binding, in insertion order within each AOR, read `page` rows at a
        time (to fill a cache without holding every row at once)."""
        ...

    def purge_expired(self, now: float) -> int:
        """Remove bindings with `expires_at <= now`; how many were removed."""
        ...

    def expired_bindings(self, now: float) -> list[tuple[str, str]]:
        """(aor, contact) of the bindings with `expires_at <= now` (what
        `purge_expired(now)` would remove)."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What routing knows about one device of `aor`: a label rules can name
    (`device:desk`), the region it is in, and the PIDF-LO location it registered
    with (RFC 4119). `device` is the binding's `+sip.instance` when it has one
    (RFC 5626 §4.1, stable across contacts), else its Contact URI. `source` says
    where the location came from: "manual", "geolocation" or "network"."""

    aor: str
    device: str
    label: str | None = None
    region: str | None = None
    pidf: str | None = None
    source: str = "manual"
    updated_at: float = 0.0


class RouteStore(Protocol):
    """Per-user routing rules (a checked document, see `sipline.server.features.rules`)
    and per-device routing information."""

    def set_route_rules(self, aor: str, document: str, updated_at: float) -> None:
        """Insert or replace the rules document of `aor`."""
        ...

    def get_route_rules(self, aor: str) -> str | None: ...

    def list_route_rules(self) -> list[tuple[str, str]]:
        """(aor, document) for every user with rules, ordered by aor."""
        ...

    def remove_route_rules(self, aor: str) -> bool:
        """Whether there were rules to remove."""
        ...

    def set_device_info(self, info: DeviceInfo) -> None:
        """Insert or replace the record of (`info.aor`, `info.device`)."""
        ...

    def get_device_info(self, aor: str, device: str) -> DeviceInfo | None: ...

    def list_device_info(self, aor: str | None = None) -> list[DeviceInfo]:
        """The records of `aor` (every record when None), ordered by aor and device."""
        ...

    def remove_device_info(self, aor: str, device: str) -> bool: ...

    def route_marks(self) -> tuple[tuple[int, float], tuple[int, float]]:
        """(row count, latest `updated_at`) of the rules and of the device records: a
        reader compares them to notice changes made by another process."""
        ...


class SharedStateStore(Protocol):
    """What server processes sharing one store need besides the data itself."""

    def binding_feed_head(self) -> int:
        """The sequence number of the latest binding change."""
        ...

    def binding_changes(self, after: int) -> tuple[int, list[str] | None]:
        """(head, AORs whose bindings changed after `after`); None: reload them all."""
        ...

    def prune_binding_changes(self, keep: int) -> int: ...

    def add_ban(self, host: str, until: float, offences: int) -> None:
        """Ban a source address for every process (failed authentication)."""
        ...

    def bans_after(self, seq: int) -> list[tuple[int, str, float, int]]:
        """(seq, host, until, offences) of the bans added after `seq`."""
        ...

    def purge_bans(self, ended_before: float) -> int: ...


class Store(
    AccountStore,
    LocationStore,
    RouteStore,
    ImStore,
    SharedStateStore,
    OpsStore,
    VoicemailStore,
    Protocol,
):
    """Every store in one backend, with a transaction for batching writes."""

    path: str

    def transaction(self) -> AbstractContextManager[None]:
        """Group calls made inside into one transaction (nested calls use savepoints,
        so a failing call rolls back alone)."""
        ...

    def close(self) -> None: ...


def split_address(address: str) -> tuple[str, str]:
    """`user@domain` -> (user, lower-case domain); ValueError when malformed."""
    user, at, domain = address.rpartition("@")
    if not at or not user or not domain:
        raise ValueError(f"{address!r} is not of the form user@domain")
    if any(c in address for c in ' \t\r\n"<>\\') or any(ord(c) < 32 for c in address):
        raise ValueError(f"{address!r} contains characters not allowed in an address")
    bracketed = domain.startswith("[") and domain.endswith("]")
    if not bracketed and not all(c.isascii() and (c.isalnum() or c in ".-") for c in domain):
        raise ValueError(f"{domain!r} is not a valid domain name")
    return user, domain.lower()


def compute_ha1s(username: str, realm: str, password: str) -> dict[str, str]:
    """HA1 for each supported base algorithm, realm = domain (RFC 7616 §3.4.2)."""
    return {algo: ha1(username, realm, password, algo) for algo in HA1_ALGORITHMS}
