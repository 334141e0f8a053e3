"""Prometheus metrics (`/metrics`), summed over the worker processes.

With `sipline serve --workers N` the supervisor gives every worker one directory in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode): each process
writes its values to memory-mapped files there and the process serving `/metrics`
(worker 0) sums them at each scrape. Counters and histograms add up; gauges say how
they combine (`livesum` for what each worker holds, `livemax` for what all see alike
in the shared store, `liveall` with a `pid` label for per-process memory). A single
process keeps its values in memory.

Figures the server already counts (`EndpointStats`, the overload guard) are copied
into these once a second by `sample`, so the hot path gains no work for them.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["CONTENT_TYPE", "Metrics", "multiprocess_dir", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# (sample, direction) -> the status line's key it sums into
_TOTALS = {
    ("sipline_requests_total", "in"): "requests_in",
    ("sipline_responses_total", "in"): "responses_in",
    ("sipline_transactions", None): "transactions",
    ("sipline_connections", None): "connections",
    ("sipline_overload_rejections_total", None): "overload_rejections",
}


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(registry: CollectorRegistry) -> bytes:
    """The exposition text: this process's registry, or every worker's files summed."""
    folder = multiprocess_dir()
    if folder is None:
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


def _rss_bytes() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return float(int(f.read().split()[1]) * _PAGE)
    except (OSError, ValueError, IndexError):
        return 0.0


class Metrics:
    """The server's metrics, in a registry of their own (several servers may share
    one test process)."""

    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry(auto_describe=True)
        kw: dict[str, Any] = {"registry": reg}
        self.requests = Counter(
            "sipline_requests",
            "SIP requests by direction and method",
            ["direction", "method"],
            **kw,
        )
        self.responses = Counter(
            "sipline_responses",
            "SIP responses by direction and status code",
            ["direction", "code"],
            **kw,
        )
        self.calls = Counter("sipline_calls", "Call attempts ended, by outcome", ["outcome"], **kw)
        self.calls_started = Counter(
            "sipline_calls_started", "Calls started (INVITEs without To tag)", **kw
        )
        self.registrations = Counter(
            "sipline_registrations", "REGISTER requests answered, by outcome", ["outcome"], **kw
        )
        self.expired = Counter(
            "sipline_registrations_expired",
            "Registered contacts that ran out without a refresh",
            **kw,
        )
        self.auth_failures = Counter(
            "sipline_auth_failures", "Requests whose credentials were refused", ["method"], **kw
        )
        self.bans = Counter("sipline_bans", "Sources banned for failed authentication", **kw)
        self.shed = Counter(
            "sipline_overload_rejections", "Requests refused by overload control (503)", **kw
        )
        self.malformed = Counter("sipline_malformed_messages", "Messages that did not parse", **kw)
        self.registered = Gauge(
            "sipline_registered_contacts",
            "Registered contacts (unexpired bindings)",
            multiprocess_mode="livemax",
            **kw,
        )
        self.active_calls = Gauge(
            "sipline_active_calls", "Calls started and not ended", multiprocess_mode="livemax", **kw
        )
        self.transactions = Gauge(
            "sipline_transactions", "Live SIP transactions", multiprocess_mode="livesum", **kw
        )
        self.connections = Gauge(
            "sipline_connections",
            "Open TCP/TLS/WebSocket connections",
            multiprocess_mode="livesum",
            **kw,
        )
        self.loop_lag = Gauge(
            "sipline_event_loop_lag_seconds",
            "Event loop lag (largest over the workers)",
            multiprocess_mode="livemax",
            **kw,
        )
        self.rss = Gauge(
            "sipline_process_resident_memory_bytes",
            "Resident memory of each server process",
            multiprocess_mode="liveall",
            **kw,
        )
        self.store_latency = Histogram(
            "sipline_store_latency_seconds",
            "Time for a store read to go through the store's queue and come back",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            **kw,
        )
        self._seen: dict[str, int] = {}

    def render(self) -> bytes:
        return render(self.registry)

    def totals(self) -> dict[str, int]:
        """The status line's counters summed over every worker (from `render`)."""
        sums: dict[str, float] = {}
        for family in text_string_to_metric_families(self.render().decode()):
            for sample in family.samples:
                key = (sample.name, sample.labels.get("direction"))
                name = _TOTALS.get(key)
                if name is not None:
                    sums[name] = sums.get(name, 0.0) + sample.value
        return {name: round(sums.get(name, 0.0)) for name in _TOTALS.values()}

    def add_from(self, name: str, counter: Counter, total: int) -> None:
        """Bring `counter` up to `total`, a running count kept elsewhere."""
        delta = total - self._seen.get(name, 0)
        if delta > 0:
            counter.inc(delta)
        self._seen[name] = total

    def sample(
        self,
        *,
        transactions: int,
        connections: int,
        loop_lag_s: float,
        overload_rejections: int,
        malformed: int,
        registered: int | None,
    ) -> None:
        self.transactions.set(transactions)
        self.connections.set(connections)
        self.loop_lag.set(loop_lag_s)
        self.rss.set(_rss_bytes())
        self.add_from("shed", self.shed, overload_rejections)
        self.add_from("malformed", self.malformed, malformed)
        if registered is not None:
            self.registered.set(registered)

    def timed(self) -> float:
        return time.perf_counter()
