"""Value types shared by the transports: addresses, errors, counters."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Protocol

__all__ = [
    "ACCEPT_ONLY",
    "FLOW_FAILED",
    "STREAM_TRANSPORTS",
    "TRANSPORTS",
    "Address",
    "ErrorCallback",
    "FlowRelay",
    "MessageCallback",
    "Source",
    "StreamLink",
    "Target",
    "TransportError",
    "TransportStats",
    "ip_version",
    "normalize_host",
    "report_send_error",
]

logger = logging.getLogger("sipline.transport")

TRANSPORTS: Final = frozenset({"UDP", "TCP", "TLS", "WS", "WSS"})
STREAM_TRANSPORTS: Final = frozenset({"TCP", "TLS", "WS", "WSS"})
# RFC 7118: WebSocket connections are only accepted, never opened by us.
ACCEPT_ONLY: Final = frozenset({"WS", "WSS"})
# How a send on a flow another worker held fails when that flow is gone (RFC 5626 §5.3).
FLOW_FAILED: Final = "flow failed"

Address = tuple[str, int]


class TransportError(Exception):
    """Sending or listening failed; `OSError` and `ssl.SSLError` become this.

    `target` names where the data was going when known; the original exception
    is chained as `__cause__`.
    """

    def __init__(self, reason: str, target: Target | None = None) -> None:
        super().__init__(reason if target is None else f"{reason} ({target})")
        self.reason = reason
        self.target = target


@dataclass(slots=True, frozen=True)
class Target:
    """Where to send: a transport, an IP literal and a port (already resolved).

    `server_name` is the name a TLS certificate must match (and the SNI sent);
    when None the IP address itself is checked. `worker` names the worker process of
    this node that holds the stream connection to the target (a flow a sibling
    accepted, docs/architecture.md "Workers"): a process without that connection
    hands the message to it instead of dialling the phone's ephemeral port.
    """

    transport: str
    host: str
    port: int
    server_name: str | None = None
    worker: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport} {host}:{self.port}"


class StreamLink(Protocol):
    """What a `Source` offers of the stream connection a message came on
    (`sipline.transport.stream.Connection`): send back over it, or drop it."""

    @property
    def is_closed(self) -> bool: ...

    def send(self, data: bytes, on_error: ErrorCallback | None = None) -> None: ...

    def abort(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


# Not frozen: one is built per received packet, and frozen slots cost 3x to build.
@dataclass(slots=True)
class Source:
    """Where a message came from: its transport, the peer, our local address and,
    on streams, the connection (responses go back over it, RFC 3261 §18.2.2)."""

    transport: str
    remote: Address
    local: Address
    connection: StreamLink | None = None


@dataclass(slots=True)
class TransportStats:
    """Counters for monitoring; plain integers, updated in place."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    keepalives_in: int = 0
    dropped: int = 0
    send_errors: int = 0
    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    message_timeouts: int = 0  # connections closed with a message begun and not finished
    connections_evicted: int = 0  # closed to make room for a new one at the limit
    to_siblings: int = 0  # handed to another worker: its flows' sends, its responses


MessageCallback = Callable[[bytes, Source], None]
ErrorCallback = Callable[[TransportError], None]


class FlowRelay(Protocol):
    """The other worker processes of this node (`sipline.transport.channel`)."""

    def forward(self, data: bytes, target: Target, on_error: ErrorCallback | None) -> bool:
        """Hand `data` to the worker `target.worker` to send on the flow it holds;
        False when that is this process (it sends, or dials, itself)."""
        ...

    def close(self) -> None: ...


def report_send_error(
    error: TransportError, on_error: ErrorCallback | None, stats: TransportStats
) -> None:
    """Count a failed send and hand it to the sender's callback, which must not raise
    into the transport (a failure is logged instead)."""
    stats.send_errors += 1
    if on_error is None:
        logger.debug("send failed: %s", error)
        return
    try:
        on_error(error)
    except Exception:
        logger.exception("on_error callback raised")


@lru_cache(maxsize=4096)
def normalize_host(host: str) -> str:
    """Canonical text of an IP literal ("[::01]" -> "::1"), for connection keys.

    Names are returned lower-cased: transports only take IP literals, but a caller's
    mistake should fail at connect time with a TransportError, not here.
    """
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text.lower()


@lru_cache(maxsize=4096)
def ip_version(host: str) -> int | None:
    """4 or 6 for an IP literal (already normalized), None for anything else."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None
