"""Overload control: shed new work with 503 and Retry-After before it times out.

RFC 3261 §21.5.4: an element that is temporarily overloaded answers 503 (Service
Unavailable) and may say in Retry-After (§20.33) when to try again; the client then
tries another server or waits. Work in progress (ACK, CANCEL, in-dialog requests,
responses) is never shed: finishing it is what frees the server.

Soft signals, sampled every `sample_interval_s` (a timer on the endpoint's `Timers`):

* event-loop lag: how late that timer fires (a busy loop serves every callback late),
  smoothed so a single slow callback does not trip it;
* how long the oldest non-INVITE request has waited for its final response. A
  non-INVITE client retransmits from T1 (500 ms, §17.1.2.2) and gives up at Timer F:
  a server that answers later than that only earns retransmissions, so this is the
  queueing delay that matters. (INVITEs wait for people, not for the server.)
* how full the UDP sockets' receive queues are (Linux SO_MEMINFO). A loop that reads
  at most a few dozen datagrams per turn can keep its lag low while the kernel queue
  grows towards drops: this is the signal that sees a UDP flood.

They do not switch shedding on and off: they move a shed fraction. While any signal is
over its limit the fraction grows (multiplicatively, starting at `min_shed`); once all
are under half their limits it shrinks step by step; between the two it holds. So
under a steady overload the fraction settles where the work admitted matches the
capacity, and goodput stays near it instead of collapsing in on-off waves (RFC 6357
§3 on why 503 on-off control collapses). Requests that answer our challenge
(credentials present, §22) finish work already begun: they are shed only once the
fraction is past one half, at twice the rate above it.

Hard limits, checked on every new request: server transactions still waiting for a
final response, all live server transactions (the table's memory bound: completed
non-INVITE transactions linger for Timer J over UDP, §17.2.2), and the store's queue
of calls not yet run (a probe the application installs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sipline.runtime.timers import Timer, Timers

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
    max_response_wait_s: float = 0.4  # oldest non-INVITE request without its answer
    min_shed: float = 0.1  # the fraction shed when a signal first trips
    shed_step_up: float = 1.5  # ... multiplied by this each sample while one holds
    shed_step_down: float = 0.02  # ... reduced by this each sample once all are low


@dataclass(slots=True)
class OverloadStats:
    rejected: int = 0  # new requests answered 503 (§21.5.4)
    episodes: int = 0  # times a soft signal started shedding (from a zero fraction)
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
        # Seconds the oldest non-INVITE request has waited for its final response.
        self.response_wait: Callable[[], float] | None = None
        self.wait_s = 0.0
        self.shed_fraction = 0.0
        self._credit_new = 0.0  # fractional shedding without randomness: see `_take`
        self._credit_continued = 0.0
        self.stats = OverloadStats()
        self.lag_s = 0.0  # smoothed event-loop lag
        self._timer: Timer | None = None
        self._expected = 0.0
        self._timers: Timers | None = None

    # -- the lag sampler ----------------------------------------------------------------
    # The sampler runs on the endpoint's Timers, not on a loop handle of its own, and
    # still measures the loop's lag: on the system clock Timers fires from one loop
    # handle, so how late the sample runs by that clock (the one `loop.time()` reads)
    # is how late the loop serves its callbacks. On a FakeClock time only moves when a
    # test advances it, and the lag read is 0: there is no loop lag in stepped time,
    # and a test feeds lag through `observe` instead.
    def start(self, timers: Timers) -> None:
        if not self.config.enabled or self._timer is not None:
            return
        self._timers = timers
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        timers = self._timers
        assert timers is not None  # set by start()
        self._expected = timers.now() + self.config.sample_interval_s
        self._timer = timers.call_at(self._expected, self._sample)

    def _sample(self) -> None:
        timers = self._timers
        assert timers is not None
        sample = max(0.0, timers.now() - self._expected)
        self.observe(sample)
        if self.queue_fill is not None:
            self.observe_queue(self.queue_fill())
        if self.response_wait is not None:
            self.observe_wait(self.response_wait())
        self.adjust()
        self._schedule()

    def observe(self, sample_s: float) -> None:
        """One lag sample, exponentially smoothed."""
        stats = self.stats
        stats.max_lag_s = max(stats.max_lag_s, sample_s)
        self.lag_s = 0.7 * self.lag_s + 0.3 * sample_s

    def observe_queue(self, fill: float) -> None:
        """One reading of the fullest UDP receive queue (0..1)."""
        self.udp_fill = fill

    def observe_wait(self, wait_s: float) -> None:
        """How long the oldest non-INVITE request has waited."""
        self.wait_s = wait_s

    # Each signal is "high" from half its limit: over the limit it raises the shed
    # fraction, between half and the limit it holds it (the hysteresis), and it names
    # the reason of a 503.
    @property
    def lagging(self) -> bool:
        return self.lag_s >= self.config.max_loop_lag_s / 2

    @property
    def queue_filling(self) -> bool:
        return self.udp_fill >= self.config.max_udp_queue_fill / 2

    @property
    def waiting(self) -> bool:
        return self.wait_s >= self.config.max_response_wait_s / 2

    def adjust(self) -> None:
        """Move the shed fraction after a sample (see the module docstring)."""
        cfg = self.config
        p = self.shed_fraction
        if (
            self.lag_s > cfg.max_loop_lag_s
            or self.udp_fill >= cfg.max_udp_queue_fill
            or self.wait_s > cfg.max_response_wait_s
        ):
            if p == 0.0:
                self.stats.episodes += 1
            p = min(1.0, max(cfg.min_shed, p * cfg.shed_step_up))
        elif not (self.lagging or self.queue_filling or self.waiting):
            p = max(0.0, p - cfg.shed_step_down)
        self.shed_fraction = p

    # -- the decision ---------------------------------------------------------------------
    def reason(self, *, continued: bool = False) -> str | None:
        """Why a new request is refused, or None when it is taken. `continued`: it
        answers one of our challenges. Each call decides for one request: with a shed
        fraction between 0 and 1, that share of the calls is refused."""
        cfg = self.config
        if not cfg.enabled:
            return None
        hard = self._hard_limit()
        if hard is not None:
            return hard
        p = self.shed_fraction
        if p > 0.0 and self._take(p, continued):
            if self.lagging:
                return "event loop lagging"
            if self.queue_filling:
                return "receive queue filling"
            return "requests waiting too long"
        return None

    def _take(self, p: float, continued: bool) -> bool:
        """Whether this request is one of the share `p` shed: a running credit sheds
        exactly that share, evenly spread and rounded (so the first request after the
        fraction passes one half is shed), with no randomness to inject."""
        if continued:
            p = 2.0 * p - 1.0  # nothing until one half, everything at one
            if p <= 0.0:
                return False
            self._credit_continued += p
            if self._credit_continued >= 0.5:
                self._credit_continued -= 1.0
                return True
            return False
        self._credit_new += p
        if self._credit_new >= 0.5:
            self._credit_new -= 1.0
            return True
        return False

    def _hard_limit(self) -> str | None:
        cfg = self.config
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
        """Whether anything is being shed now (this does not decide for a request)."""
        return self.config.enabled and (self.shed_fraction > 0.0 or self._hard_limit() is not None)
