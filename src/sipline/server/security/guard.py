"""Failed authentication counted per source, and the bans that follow (no I/O).

A source address that fails `max_failures` times within `window_s` is banned for
`ban_s`, doubled at each repeat offence up to `max_ban_s`. A user attacked from many
addresses is not locked out: bans fall on sources, never on the user. Past
`max_failures` failures of one user (all sources) the guessing is slowed instead:
each further source is banned after `UNDER_ATTACK_FAILURES` failures on that user
(counted per user and source), while the user's devices with the right password go
through at once. (Delaying the answers would hold transactions, and the overload
control would read the wait as overload.)
Counting is in memory, so a successful request costs no store write; a ban is
shared with other processes by the caller (`SecurityMonitor`).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass

__all__ = ["AuthGuard", "Ban", "GuardSettings", "source_key"]

MAX_TRACKED = 50_000  # sources and users counted at once; the oldest are forgotten
UNDER_ATTACK_FAILURES = 3  # per source, on a user that failed max_failures times already


@dataclass(frozen=True, slots=True)
class GuardSettings:
    max_failures: int = 10
    window_s: float = 60.0
    ban_s: float = 60.0
    max_ban_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class Ban:
    host: str
    until: float  # in the clock of `now`
    offences: int  # this source's bans so far, this one included
    failures: int
    duration_s: float


def source_key(host: str) -> str:
    """What a ban falls on: an IPv4 address (an IPv4-mapped one as such), or the /64 of
    an IPv6 address (one customer's network: it holds more addresses than any count)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AuthGuard:
    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self._by_source: OrderedDict[str, deque[float]] = OrderedDict()
        self._by_user: OrderedDict[str, deque[float]] = OrderedDict()
        self._by_pair: OrderedDict[str, deque[float]] = OrderedDict()
        # host -> (banned until, offences so far)
        self._bans: dict[str, tuple[float, int]] = {}

    def ban_length(self, offences: int) -> float:
        s = self.settings
        return float(min(s.ban_s * 2 ** max(offences - 1, 0), s.max_ban_s))

    def banned(self, host: str, now: float) -> bool:
        found = self._bans.get(host)
        return found is not None and now < found[0]

    def failed(self, host: str, user: str, now: float) -> Ban | None:
        """Count a failed authentication of `user` from `host`; a new ban when the
        source crossed the threshold."""
        count = self._count(self._by_source, host, now)
        pair = self._count(self._by_pair, f"{user}\x00{host}", now)
        attacked = self._count(self._by_user, user, now) > self.settings.max_failures
        limit = self.settings.max_failures
        if attacked and pair >= min(UNDER_ATTACK_FAILURES, limit):
            count = max(count, limit)
        if count < limit or self.banned(host, now):
            return None
        previous = self._bans.get(host)
        # A source that behaved for a whole maximum ban since its last one starts over.
        offences = 1
        if previous is not None and now - previous[0] < self.settings.max_ban_s:
            offences = previous[1] + 1
        until = now + self.ban_length(offences)
        self._bans[host] = (until, offences)
        self._by_source.pop(host, None)
        self._prune(now)
        return Ban(host, until, offences, count, self.ban_length(offences))

    def succeeded(self, host: str) -> None:
        """A source that authenticated is a client with a typo, not a scanner: forget
        its failures (in memory only)."""
        if self._by_source:
            self._by_source.pop(host, None)

    def under_attack(self, user: str, now: float) -> bool:
        """Has `user` failed more than `max_failures` times (all sources) lately?"""
        times = self._by_user.get(user)
        if times is None:
            return False
        recent = sum(1 for t in times if now - t < self.settings.window_s)
        return recent > self.settings.max_failures

    def learn(self, host: str, until: float, offences: int) -> None:
        """A ban decided by another process."""
        current = self._bans.get(host)
        if current is None or current[0] < until:
            self._bans[host] = (until, max(offences, current[1] if current else 0))

    def _count(self, table: OrderedDict[str, deque[float]], key: str, now: float) -> int:
        times = table.get(key)
        if times is None:
            if len(table) >= MAX_TRACKED:
                table.popitem(last=False)
            times = table[key] = deque(maxlen=self.settings.max_failures * 4)
        else:
            table.move_to_end(key)
        times.append(now)
        window = self.settings.window_s
        while times and now - times[0] >= window:
            times.popleft()
        return len(times)

    def _prune(self, now: float) -> None:
        """Forget bans long over (their repeat count with them)."""
        horizon = self.settings.max_ban_s
        for host in [h for h, (until, _) in self._bans.items() if now - until > horizon]:
            del self._bans[host]
