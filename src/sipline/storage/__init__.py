"""Accounts and the location service: store protocols, the SQLite backend, the asyncio front."""

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
    StoreError,
    User,
    compute_ha1s,
    split_address,
)
from sipline.storage.sqlite import SCHEMA_VERSION, SqliteStore

__all__ = [
    "HA1_ALGORITHMS",
    "SCHEMA_VERSION",
    "AccountStore",
    "AsyncStore",
    "Binding",
    "DeviceInfo",
    "DuplicateError",
    "LocationStore",
    "NotFoundError",
    "RouteStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "User",
    "compute_ha1s",
    "split_address",
]
