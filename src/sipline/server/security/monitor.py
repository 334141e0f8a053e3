"""The server's security monitor: counts failed authentications (`AuthGuard`), logs
them (`log`), bans sources and shares the bans with the other worker processes
through the store (one row per ban; each process reads the new rows every
`BAN_POLL_S`). Times are wall-clock seconds, the clock every process shares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sipline.core.message import Request
from sipline.server.security import log as seclog
from sipline.server.security.guard import AuthGuard, GuardSettings, source_key
from sipline.storage.aio import AsyncStore
from sipline.storage.base import StoreError

__all__ = ["BAN_POLL_S", "SecurityMonitor"]

BAN_POLL_S = 0.25  # how often a worker reads the bans other workers added
# A banned source's refusals are logged at most this often each (a scanner sends
# thousands a second; one line says it goes on).
REFUSAL_LOG_S = 10.0
_MAX_LOGGED = 10_000

log = logging.getLogger("sipline.security")


class SecurityMonitor:
    """The `AuthObserver` of the server's authenticator, and the ban check."""

    def __init__(
        self,
        settings: GuardSettings,
        *,
        wall: Callable[[], float],
        store: AsyncStore | None = None,
        spawn: Callable[..., object] | None = None,
        exempt: Callable[[str], bool] = lambda host: False,
    ) -> None:
        self.guard = AuthGuard(settings)
        # Never banned (trusted peers: an SBC or trunk carries many users' attempts from
        # one address); their failures are logged, not counted.
        self._exempt = exempt
        self._wall = wall
        self._store = store  # None: one process, nothing to share
        self._spawn = spawn
        self._seq = 0
        self.refusals = 0  # requests refused because their source was banned
        self._logged: dict[str, float] = {}  # host -> when its last refusal was logged
        # Also told of each failure and ban: the metrics and the operator's events
        # (server/ops/service.py).
        self.on_auth_failed: Callable[[Request, str, tuple[str, int]], None] | None = None
        self.on_ban: Callable[[str, float], None] | None = None

    def banned(self, host: str) -> bool:
        return self.guard.banned(source_key(host), self._wall())

    def refuse(self, source: tuple[str, int], request: Request) -> None:
        """Count a refusal of a banned source; log one every REFUSAL_LOG_S."""
        self.refusals += 1
        now = self._wall()
        last = self._logged.get(source[0])
        if last is not None and now - last < REFUSAL_LOG_S:
            return
        if len(self._logged) >= _MAX_LOGGED:
            self._logged.clear()
        self._logged[source[0]] = now
        seclog.refused(source, seclog.from_user(request), request, "banned")

    # -- AuthObserver -------------------------------------------------------------------------
    def auth_failed(self, request: Request, user: str, source: tuple[str, int] | None) -> None:
        if source is None:
            return
        now = self._wall()
        seclog.auth_failed(source, user, request, "wrong-credentials")
        if self.on_auth_failed is not None:
            self.on_auth_failed(request, user, source)
        if self._exempt(source[0]):
            return
        ban = self.guard.failed(source_key(source[0]), user, now)
        if ban is not None:
            # The address that crossed the line is logged (fail2ban reads an address);
            # the ban falls on its key (an IPv6 /64).
            seclog.banned(source[0], ban.duration_s, ban.offences, ban.failures)
            if self.on_ban is not None:
                self.on_ban(source[0], ban.duration_s)
            self._publish(ban.host, ban.until, ban.offences)

    def auth_succeeded(self, source: tuple[str, int] | None) -> None:
        if source is not None:
            self.guard.succeeded(source_key(source[0]))

    # -- sharing with other processes ---------------------------------------------------------
    def _publish(self, host: str, until: float, offences: int) -> None:
        store, spawn = self._store, self._spawn
        if store is None or spawn is None:
            return
        spawn(self._write_ban(store, host, until, offences))

    async def _write_ban(self, store: AsyncStore, host: str, until: float, offences: int) -> None:
        try:
            await store.write(store.store.add_ban, host, until, offences)
        except StoreError as exc:
            log.warning("cannot share the ban of %s with the other workers: %s", host, exc)

    async def start(self) -> None:
        """Start after the bans already in the store (those still running apply)."""
        if self._store is not None:
            await self.poll()

    async def poll(self) -> None:
        """Apply the bans other processes added since the last poll."""
        store = self._store
        if store is None:
            return
        rows = await store.call(store.store.bans_after, self._seq)
        for seq, host, until, offences in rows:
            self._seq = max(self._seq, seq)
            self.guard.learn(host, until, offences)

    async def purge(self) -> None:
        """Forget bans over for longer than the longest ban (housekeeping)."""
        store = self._store
        if store is not None:
            horizon = self._wall() - self.guard.settings.max_ban_s
            await store.write(store.store.purge_bans, horizon)
