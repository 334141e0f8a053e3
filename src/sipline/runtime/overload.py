"""Overload control: shed new work with 503 and Retry-After before it times out.

RFC 3261 §21.5.4: an element that is temporarily overloaded answers 503 (Service
Unavailable) and may say in Retry-After (§20.33) when to try again; the client then
tries another server or waits. Work in progress (ACK, CANCEL, in-dialog requests,
responses) is never shed: finishing it is what frees the server.

Three signals, each read cheaply on every new request:

* event-loop lag: a periodic timer measures how late it fires (a busy loop serves
  every callback late), smoothed so a single slow callback does not trip it, with
  hysteresis (shedding stops once the lag falls under half the limit);
* server transactions still waiting for their final response, and all live server
  transactions (the table's memory bound: completed non-INVITE transactions linger
  for Timer J over UDP, §17.2.2);
* the store's queue of calls not yet run (a probe the application installs);
* how full the UDP sockets' receive queues are, read at each lag sample (Linux
  SO_MEMINFO). A loop that reads at most a few dozen datagrams per turn can keep its
  lag low while the kernel queue grows towards drops: this is the signal that sees a
  UDP flood, with the same hysteresis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["OverloadConfig", "OverloadGuard", "OverloadStats"]


@dataclass(slots=True)
class OverloadConfig:
    enabled: bool = True
    max_loop_lag_s: float = 0.25
    max_pending_transactions: int = 2000
    max_server_transactions: int = 50_000
    max_store_backlog: int = 1000
    retry_after_s: int = 5
    sample_interval_s: float = 0.05
    max_udp_queue_fill: float = 0.1  # share of a UDP socket's receive buffer in use


@dataclass(slots=True)
class OverloadStats:
    rejected: int = 0  # new requests answered 503 (§21.5.4)
    episodes: int = 0  # times the lag or queue detector started shedding
    max_lag_s: float = 0.0  # the largest lag sample seen


class OverloadGuard:
    """Decides, per new request, whether the element can take it."""

    def __init__(
        self,
        config: OverloadConfig,
        *,
        pending: Callable[[], int],
        live: Callable[[], int],
    ) -> None:
        self.config = config
        self._pending = pending
        self._live = live
        self.backlog: Callable[[], int] | None = None  # the store's queue length
        # The fullest UDP receive queue, as a share of its buffer (0 when unknown).
        self.queue_fill: Callable[[], float] | None = None
        self.udp_fill = 0.0
        self.queue_filling = False
        self.stats = OverloadStats()
        self.lag_s = 0.0  # smoothed event-loop lag
        self.lagging = False
        self._handle: asyncio.TimerHandle | None = None
        self._expected = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the lag sampler ----------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.config.enabled or self._handle is not None:
            return
        self._loop = loop
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        loop = self._loop
        assert loop is not None  # set by start()
        self._expected = loop.time() + self.config.sample_interval_s
        self._handle = loop.call_at(self._expected, self._sample)

    def _sample(self) -> None:
        loop = self._loop
        assert loop is not None
        sample = max(0.0, loop.time() - self._expected)
        self.observe(sample)
        if self.queue_fill is not None:
            self.observe_queue(self.queue_fill())
        self._schedule()

    def observe(self, sample_s: float) -> None:
        """One lag sample: exponential smoothing, then the hysteresis."""
        stats = self.stats
        stats.max_lag_s = max(stats.max_lag_s, sample_s)
        self.lag_s = lag = 0.7 * self.lag_s + 0.3 * sample_s
        limit = self.config.max_loop_lag_s
        if not self.lagging and lag > limit:
            self.lagging = True
            stats.episodes += 1
        elif self.lagging and lag < limit / 2:
            self.lagging = False

    def observe_queue(self, fill: float) -> None:
        """One reading of the fullest UDP receive queue (0..1), with hysteresis."""
        self.udp_fill = fill
        limit = self.config.max_udp_queue_fill
        if not self.queue_filling and fill >= limit:
            self.queue_filling = True
            self.stats.episodes += 1
        elif self.queue_filling and fill < limit / 2:
            self.queue_filling = False

    # -- the decision ---------------------------------------------------------------------
    def reason(self) -> str | None:
        """Why a new request would be refused now, or None when it can be taken."""
        cfg = self.config
        if not cfg.enabled:
            return None
        if self.lagging:
            return "event loop lagging"
        if self.queue_filling:
            return "receive queue filling"
        if self._pending() >= cfg.max_pending_transactions:
            return "too many transactions in progress"
        if self._live() >= cfg.max_server_transactions:
            return "transaction table full"
        backlog = self.backlog
        if backlog is not None and backlog() >= cfg.max_store_backlog:
            return "store backlog"
        return None

    @property
    def overloaded(self) -> bool:
        return self.reason() is not None
