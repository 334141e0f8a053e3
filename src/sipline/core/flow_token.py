"""Flow tokens (RFC 5626 §5.2): a flow's identity, signed, in the user part of a URI.

A connection-oriented flow (a TCP or TLS connection a phone opened) belongs to the
process that holds its socket; a UDP flow is a remote address and the listener it
reached. The registrar records a URI naming the node that holds the flow with a token
in its user part (`Binding.flow`), and the proxy record-routes with one; whoever meets
that URI later (another worker, another node) learns from the token which worker of
that node holds the flow and the phone's address on it.

    token = base64url( version(1) || worker(1) || transport(1) || port(2) || ip(4|16)
                       || HMAC-SHA256(key, the bytes before)[:10] )

The HMAC, keyed by the server secret every worker and node sharing the database has
(server/secret_file.py), makes a token impossible to forge (§5.2: "the proxy MUST be
able to determine that the flow token was issued by it"), so a stranger cannot have
us send to an address of its choosing over a flow it names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_WORKER", "Flow", "FlowCodec"]

MAX_WORKER: Final = 255
_VERSION: Final = 1
_MAC_BYTES: Final = 10  # 80 bits: not guessable within any number of tries that matters
# Appended only: a token names its transport by index (RFC 7118 WebSockets last).
_TRANSPORTS: Final = ("UDP", "TCP", "TLS", "WS", "WSS")


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow: the worker process holding it (its index; 0 for a single process),
    the transport, and the remote address of the phone on it."""

    worker: int
    transport: str
    host: str
    port: int

    @property
    def stream(self) -> bool:
        return self.transport != "UDP"


class FlowCodec:
    """Makes and checks flow tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        self._key = hashlib.sha256(b"sipline flow token\x00" + secret).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, "sha256").digest()[:_MAC_BYTES]

    def encode(self, flow: Flow) -> str:
        """The token of `flow`: URL-safe base64 without padding (a SIP `user` part)."""
        if not 0 <= flow.worker <= MAX_WORKER:
            raise ValueError(f"worker index {flow.worker} out of range")
        if not 0 <= flow.port <= 0xFFFF:
            raise ValueError(f"port {flow.port} out of range")
        ip = ipaddress.ip_address(flow.host.strip("[]")).packed
        body = (
            bytes((_VERSION, flow.worker, _TRANSPORTS.index(flow.transport.upper())))
            + flow.port.to_bytes(2, "big")
            + ip
        )
        raw = body + self._mac(body)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, token: str) -> Flow | None:
        """The flow a token names, or None when it is not one we made (damaged,
        forged, or signed under another secret)."""
        if not 0 < len(token) <= 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) not in (5 + 4 + _MAC_BYTES, 5 + 16 + _MAC_BYTES):
            return None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        version, worker, transport = body[0], body[1], body[2]
        if version != _VERSION or transport >= len(_TRANSPORTS):
            return None
        host = str(ipaddress.ip_address(body[5:]))
        return Flow(worker, _TRANSPORTS[transport], host, int.from_bytes(body[3:5], "big"))
