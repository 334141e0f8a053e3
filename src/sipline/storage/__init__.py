"""Accounts and the location service: store protocols, the SQLite and PostgreSQL
backends, the asyncio front.

What the server keeps (accounts, bindings, routing rules, devices, stored messages,
presence, call records, voicemail) behind protocols in `base`, `im` and friends;
`sqlite` is the embedded backend (its migrations in `sqlite_schema`), `postgres` the
networked one (`database = "postgresql://…"`), both built from the same table groups
(`sql_tables`); `location.open_store` opens the one a database setting names;
`aio.AsyncStore` runs it on one thread with group commit, and `cache` keeps bindings
in memory. Imports `sipline.core` only; used by `sipline.server` and `sipline.cli`.
"""

from __future__ import annotations

from sipline.storage.aio import AsyncStore
from sipline.storage.base import (
    HA1_ALGORITHMS,
    AccountStore,
    Binding,
    DeviceInfo,
    DuplicateError,
    LocationStore,
    NotFoundError,
    RouteStore,
    Store,
    StoreBusyError,
    StoreError,
    User,
    compute_ha1s,
    split_address,
)
from sipline.storage.im import (
    MESSAGE_STATES,
    WATCHER_DECISIONS,
    ImStore,
    NewMessage,
    Publication,
    StoredMessage,
    SubscriptionRecord,
)
from sipline.storage.location import DatabaseLocation, open_store
from sipline.storage.sqlite import SqliteStore
from sipline.storage.sqlite_schema import SCHEMA_VERSION

__all__ = [
    "HA1_ALGORITHMS",
    "MESSAGE_STATES",
    "SCHEMA_VERSION",
    "WATCHER_DECISIONS",
    "AccountStore",
    "AsyncStore",
    "Binding",
    "DatabaseLocation",
    "DeviceInfo",
    "DuplicateError",
    "ImStore",
    "LocationStore",
    "NewMessage",
    "NotFoundError",
    "Publication",
    "RouteStore",
    "SqliteStore",
    "Store",
    "StoreBusyError",
    "StoreError",
    "StoredMessage",
    "SubscriptionRecord",
    "User",
    "compute_ha1s",
    "open_store",
    "split_address",
]
