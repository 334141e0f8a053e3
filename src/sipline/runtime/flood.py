"""Per-source flood control, in front of the overload control (the idea of Kamailio's pike).

Overload control (runtime/overload.py) protects the server as a whole: past capacity it
sheds new requests from everyone alike, so a single source sending thousands of
requests a second takes most of the capacity and the legitimate clients get the 503s.
This guard looks at each source address first: messages per source over a sliding
window of `window_s` (two fixed buckets, the previous one weighted by how much of it
the window still covers), and past `max_requests` the source is banned for `ban_s`:
whatever it sends is dropped before it is parsed, so a banned flood costs a dict lookup
per datagram and holds no memory (no transaction, no parsed message, no answer).

Known scanners (SIPVicious' "friendly-scanner", sipcli, ...) are recognised by their
User-Agent and banned at their first request, unanswered: a scanner learns nothing, not
even that a SIP server is there.

Costs on the hot path: one dict lookup and an increment per message; the clock read is
the one the periodic tick stores. The table is bounded (`max_sources`) and swept at
each window: a source silent for two windows is forgotten.

Exempt: the configured networks (trusted peers; by default this host's own loopback
address, where a local SBC or PBX would forward everyone's traffic from), and an
emergency call (RFC 5031 service URN or a configured number, the exemption the
application decides through `spare`) from a banned source: it was counted, but it is
never dropped.

With several worker processes, each counts what the kernel hands it; a ban is
published (`on_ban`) and applied by every worker, so a source spread over several
ports (hashed to several workers) is stopped everywhere once any worker sees it over
the limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sipline.core.message import Request
from sipline.runtime.timers import Timer, Timers
from sipline.transport.security_log import security_event

__all__ = [
    "DEFAULT_SCANNERS",
    "FloodConfig",
    "FloodGuard",
    "FloodStats",
    "networks",
]


# User-Agents of SIP scanners and war-dialers (substrings, case-insensitive).
DEFAULT_SCANNERS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "pplsip",
    "sip-scan",
    "iwar",
    "sundayddr",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


@dataclass(frozen=True, slots=True)
class FloodConfig:
    enabled: bool = True
    max_requests: int = 1000  # messages per source over one window ...
    window_s: float = 2.0
    ban_s: float = 60.0  # ... past which the source is banned this long
    exempt: tuple[Network, ...] = field(default_factory=lambda: networks(["127.0.0.1", "::1"]))
    scanners: tuple[str, ...] = DEFAULT_SCANNERS
    max_sources: int = 50_000  # sources tracked at once (the table's memory bound)


@dataclass(slots=True)
class FloodStats:
    bans: int = 0  # sources banned here (by count or User-Agent)
    scanners: int = 0  # ... of them for their User-Agent
    dropped: int = 0  # messages from banned sources dropped unparsed
    spared: int = 0  # emergency calls from a banned source let through


# A source's entry: [messages this bucket, messages last bucket, banned until]. The
# third is 0 when not banned, -1 for an exempt source.
_Entry = list[float]


class FloodGuard:
    """Counts messages per source address and bans the ones over the limit."""

    def __init__(self, config: FloodConfig) -> None:
        self.config = config
        self.stats = FloodStats()
        self._table: dict[str, _Entry] = {}
        self._limit = config.max_requests
        self._now = 0.0  # the clock at the last tick
        self._bucket_start = 0.0
        self._scanners = tuple(s.lower() for s in config.scanners)
        self._timer: Timer | None = None
        self._timers: Timers | None = None
        # Told of each ban made here (host, seconds): to share it with other workers.
        self.on_ban: Callable[[str, float], None] | None = None
        # Whether a message from a banned source must pass anyway (an emergency call).
        self.spare: Callable[[bytes, str], bool] | None = None

    # -- the tick -------------------------------------------------------------------------
    def start(self, timers: Timers) -> None:
        if not self.config.enabled or self._timer is not None:
            return
        self._timers = timers
        self._now = self._bucket_start = timers.now()
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        assert self._timers is not None
        # A quarter window: bans end, and buckets turn, at most that late.
        self._timer = self._timers.call_later(self.config.window_s / 4, self._tick)

    def _tick(self) -> None:
        assert self._timers is not None
        self.tick(self._timers.now())
        self._schedule()

    def tick(self, now: float) -> None:
        """Advance the clock the hot path reads; turn the buckets once a window passed."""
        self._now = now
        elapsed = now - self._bucket_start
        if elapsed < self.config.window_s:
            return
        skipped = elapsed >= 2 * self.config.window_s  # no tick for a whole window
        self._bucket_start = now
        table = self._table
        for host in list(table):
            entry = table[host]
            banned = entry[2]
            if entry[0] == 0 and 0 <= banned <= now:
                del table[host]  # silent for a whole bucket, not banned: forget it
                continue
            entry[1] = 0 if skipped else entry[0]
            entry[0] = 0

    # -- the hot path ---------------------------------------------------------------------
    def admit(self, remote: tuple[str, int], data: bytes) -> bool:
        """Count one message from `remote`; False: drop it unparsed."""
        host = remote[0]
        entry = self._table.get(host)
        if entry is None:
            return self._first(host)
        banned = entry[2]
        if banned:
            if banned < 0:
                return True  # exempt
            if self._now < banned:
                return self._spared(data, host)
            entry[2] = 0.0  # the ban is over
        entry[0] += 1
        if entry[0] + entry[1] > self._limit and self._rate(entry) > self._limit:
            self._ban(host, entry, self.config.ban_s)
            security_event(
                "flood-ban",
                remote,
                None,
                None,
                "flood",
                limit=self._limit,
                window_s=f"{self.config.window_s:g}",
                seconds=f"{self.config.ban_s:g}",
            )
            return self._spared(data, host)
        return True

    def _spared(self, data: bytes, host: str) -> bool:
        """A message from a banned source: dropped, unless it is an emergency call the
        application spares (only INVITEs are looked at)."""
        spare = self.spare
        if spare is not None and data[:7] == b"INVITE " and spare(data, host):
            self.stats.spared += 1
            return True
        self.stats.dropped += 1
        return False

    def _rate(self, entry: _Entry) -> float:
        """Messages over the sliding window: this bucket, and the share of the last one
        the window still covers."""
        covered = 1.0 - (self._now - self._bucket_start) / self.config.window_s
        return entry[0] + entry[1] * max(0.0, covered)

    def _first(self, host: str) -> bool:
        if len(self._table) >= self.config.max_sources:
            return True  # full: uncounted until the next sweep (overload control remains)
        self._table[host] = [0.0, 0.0, -1.0] if self.exempt(host) else [1.0, 0.0, 0.0]
        return True

    def exempt(self, host: str) -> bool:
        """Whether `host` is in an exempt (trusted) network."""
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        return any(address in net for net in self.config.exempt)

    # -- bans ----------------------------------------------------------------------------------
    def _ban(self, host: str, entry: _Entry, seconds: float) -> None:
        entry[2] = self._now + seconds
        self.stats.bans += 1
        if self.on_ban is not None:
            self.on_ban(host, seconds)

    def ban(self, host: str, seconds: float, *, publish: bool = True) -> None:
        """Ban `host` for `seconds` from now (a scanner, or a ban another worker made);
        an exempt source is not banned."""
        entry = self._table.get(host)
        if entry is None:
            if self.exempt(host):
                return
            entry = [0.0, 0.0, 0.0]
            self._table[host] = entry  # a ban is kept even when the table is full
        elif entry[2] < 0:
            return
        if publish:
            self._ban(host, entry, seconds)
        else:
            entry[2] = self._now + seconds

    def banned(self, host: str) -> bool:
        entry = self._table.get(host)
        return entry is not None and entry[2] > 0 and self._now < entry[2]

    @property
    def sources(self) -> int:
        return len(self._table)

    @property
    def banned_count(self) -> int:
        now = self._now
        return sum(1 for e in self._table.values() if e[2] > 0 and now < e[2])

    # -- scanners -------------------------------------------------------------------------------
    def refuse_scanner(self, request: Request, remote: tuple[str, int]) -> bool:
        """A request from a known scanner (by User-Agent): ban its source, say so, and
        tell the caller to drop it unanswered."""
        if not self._scanners:
            return False
        ua = request.headers.get("user-agent")
        if ua is None:
            return False
        lowered = ua.lower()
        if not any(s in lowered for s in self._scanners):
            return False
        entry = self._table.get(remote[0])
        if entry is not None and entry[2] < 0:
            return False  # a trusted peer is not a scanner, whatever it calls itself
        self.stats.scanners += 1
        self.ban(remote[0], self.config.ban_s)
        user = ""
        to = request.headers.get("to") or ""
        if "sip:" in to:
            user = to.split("sip:", 1)[1].split("@", 1)[0][:64]
        security_event(
            "scanner-refused", remote, user, ua, "scanner", seconds=f"{self.config.ban_s:g}"
        )
        return True
