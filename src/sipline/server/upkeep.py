"""What a server process does in the background: purge what expired, and follow what
other processes change in the store (the binding change feed, the credentials
version, the source bans)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sipline.runtime.endpoint import Endpoint
from sipline.runtime.system import MemoryRelease
from sipline.runtime.timers import Timers
from sipline.server.backend import ServerBackend
from sipline.server.security.monitor import BAN_POLL_S, SecurityMonitor
from sipline.storage.aio import AsyncStore
from sipline.storage.base import StoreError

__all__ = ["CREDENTIALS_POLL_S", "FEED_KEEP", "FEED_POLL_S", "follow", "housekeep", "start_upkeep"]

log = logging.getLogger("sipline.server")

FEED_POLL_S = 0.02  # how often a worker reads the store's binding change feed
# How often the credentials version is read: a password changed or a user removed
# from the CLI stops working within this (the HA1 cache, storage/aio.py).
CREDENTIALS_POLL_S = 0.1
FEED_KEEP = 50_000  # binding changes kept in the feed for workers that fell behind


def start_upkeep(
    endpoint: Endpoint,
    store: AsyncStore,
    backend: ServerBackend,
    memory: MemoryRelease,
    *,
    security: SecurityMonitor | None,
) -> list[asyncio.Task[None]]:
    """The background tasks of a server process. Every one follows the binding change
    feed and the bans: other workers, other nodes (server/node.py) and the CLI write
    the same store."""
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(
            housekeep(
                endpoint,
                store,
                backend,
                memory,
                security=security,
            )
        ),
        loop.create_task(
            follow(
                endpoint.timers,
                CREDENTIALS_POLL_S,
                store.poll_credentials,
                "the credentials version",
                store.forget_credentials,
            )
        ),
    ]
    feed = follow(
        endpoint.timers, FEED_POLL_S, store.poll_binding_changes, "the binding change feed"
    )
    tasks.append(loop.create_task(feed))
    if security is not None:
        tasks.append(
            loop.create_task(follow(endpoint.timers, BAN_POLL_S, security.poll, "the source bans"))
        )
    return tasks


async def housekeep(
    endpoint: Endpoint,
    store: AsyncStore,
    backend: ServerBackend,
    memory: MemoryRelease,
    *,
    security: SecurityMonitor | None,
) -> None:
    """Purge expired bindings and pick up domains added from the CLI; give back the
    memory a burst of transactions took once they are gone (runtime/system.py); trim
    the change feed and the bans."""
    while True:
        await endpoint.timers.sleep(5.0)
        peak = memory.peak
        if memory.observe(endpoint.transactions.server_count):
            log.info("released the memory of a burst of %d transactions", peak)
        try:
            await store.purge_expired(endpoint.wall())
            await backend.refresh_domains()
            await store.write(store.store.prune_binding_changes, FEED_KEEP)
            if security is not None:
                await security.purge()
        except StoreError as exc:
            log.warning("housekeeping failed: %s", exc)


async def follow(
    timers: Timers,
    every_s: float,
    poll: Callable[[], Awaitable[object]],
    what: str,
    on_error: Callable[[], None] | None = None,
) -> None:
    """Read something other processes change in the store, every `every_s`: the
    binding change feed (a worker sees bindings other workers and the CLI wrote
    within milliseconds, one indexed read per poll) and the credentials version
    (the HA1 cache is dropped when any HA1 changed)."""
    while True:
        await timers.sleep(every_s)
        try:
            await poll()
        except StoreError as exc:
            log.warning("reading %s failed: %s", what, exc)
            if on_error is not None:
                on_error()
            await timers.sleep(1.0)
