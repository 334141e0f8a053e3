"""asyncio transports: UDP, TCP, TLS and WebSocket over IPv4 and IPv6 (RFC 3261 §18).

`TransportLayer` owns every socket: the `BoundSocket`s it receives on and the stream
`Connection`s; one `send` for all. TLS certificate helpers live in
`sipline.transport.tls`, the event loop choice in `sipline.transport.loop`, and the
channel between the worker processes of a node in `sipline.transport.channel`.
Imported by the runtime (and the wiring above it); imports only the pure layers.
"""

from sipline.transport.base import Source, Target, TransportError, TransportStats
from sipline.transport.layer import BoundSocket, TransportLayer
from sipline.transport.stream import Connection
from sipline.transport.websocket import WsPolicy

__all__ = [
    "BoundSocket",
    "Connection",
    "Source",
    "Target",
    "TransportError",
    "TransportLayer",
    "TransportStats",
    "WsPolicy",
]
