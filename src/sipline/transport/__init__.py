"""asyncio transports: UDP, TCP and TLS over IPv4 and IPv6 (RFC 3261 §18).

TLS certificate helpers live in `sipline.transport.tls` and the event loop choice
in `sipline.transport.loop`.
"""

from sipline.transport.base import Source, Target, TransportError, TransportStats
from sipline.transport.layer import BoundSocket, TransportLayer
from sipline.transport.stream import Connection

__all__ = [
    "BoundSocket",
    "Connection",
    "Source",
    "Target",
    "TransportError",
    "TransportLayer",
    "TransportStats",
]
