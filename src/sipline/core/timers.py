"""Transaction timers (RFC 3261 §17 and Table 4, RFC 6026 §8.4 / §8.7).

`TimerConfig` holds T1, T2 and T4 and derives every other duration from them. The
retransmission timers (A, E, G) start at T1 and back off; the others are fixed
durations, several of which collapse to zero over reliable transports. Timer C
belongs to the proxy core and is not modelled here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["RETRANSMIT_TIMERS", "Timer", "TimerConfig"]


class Timer(enum.Enum):
    """The RFC 3261 timers a transaction uses, plus the §17.2.1 200 ms Trying delay."""

    __hash__ = object.__hash__  # identity: fast in the per-message dict lookups

    A = "A"  # INVITE request retransmit (client, unreliable)
    B = "B"  # INVITE transaction timeout (client)
    D = "D"  # wait time for response retransmits (client INVITE, Completed)
    E = "E"  # non-INVITE request retransmit (client, unreliable)
    F = "F"  # non-INVITE transaction timeout (client)
    G = "G"  # INVITE final response retransmit (server, unreliable)
    H = "H"  # wait time for ACK receipt (server INVITE)
    I = "I"  # wait time for ACK retransmits (server INVITE, Confirmed)  # noqa: E741
    J = "J"  # wait time for non-INVITE request retransmits (server)
    K = "K"  # wait time for response retransmits (client non-INVITE)
    L = "L"  # wait time for INVITE retransmits after a 2xx (server, RFC 6026)
    M = "M"  # wait time for 2xx retransmits (client INVITE, RFC 6026)
    TRYING = "100"  # §17.2.1: send 100 Trying if the TU has not answered in 200 ms


RETRANSMIT_TIMERS = frozenset({Timer.A, Timer.E, Timer.G})


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (retransmit cap for non-INVITE and responses), T4 (network
    lifetime of a message), all in seconds; `trying` is the §17.2.1 delay."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying: float = 0.2

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 > 0 and self.trying >= 0):
            raise ValueError("timer values must be positive, with T2 >= T1")

    @property
    def b(self) -> float:
        return 64 * self.t1

    @property
    def f(self) -> float:
        return 64 * self.t1

    @property
    def h(self) -> float:
        return 64 * self.t1

    @property
    def l(self) -> float:  # noqa: E743
        return 64 * self.t1

    @property
    def m(self) -> float:
        return 64 * self.t1

    def d(self, reliable: bool) -> float:
        # §17.1.1.2: at least 32 s over UDP. Never shorter than Timer H either, so the
        # transaction outlives every final-response retransmission the server may send.
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    def i(self, reliable: bool) -> float:
        return 0.0 if reliable else self.t4

    def j(self, reliable: bool) -> float:
        return 0.0 if reliable else 64 * self.t1

    def k(self, reliable: bool) -> float:
        return 0.0 if reliable else self.t4

    def duration(self, timer: Timer, reliable: bool) -> float:
        """Initial duration of `timer`: T1 for the retransmission timers (their later
        intervals back off, see the transaction layer), the fixed value otherwise."""
        if timer in RETRANSMIT_TIMERS:
            return self.t1
        if timer is Timer.TRYING:
            return self.trying
        if timer is Timer.D:
            return self.d(reliable)
        if timer is Timer.I:
            return self.i(reliable)
        if timer is Timer.J:
            return self.j(reliable)
        if timer is Timer.K:
            return self.k(reliable)
        return 64 * self.t1  # B, F, H, L, M

    def durations(self, reliable: bool) -> dict[Timer, float]:
        """Every timer's initial duration for one transport kind (precomputed by callers)."""
        return {t: self.duration(t, reliable) for t in Timer}
