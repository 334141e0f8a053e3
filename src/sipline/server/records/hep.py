"""HEP v3 (the Homer Encapsulation Protocol): every SIP message sent or received is
copied to a Homer collector (`[hep] address`), as Kamailio's siptrace and OpenSIPS'
proto_hep do.

A HEP3 packet is "HEP3", its total length, then chunks of (vendor 0, type, length,
value): 1 IP family, 2 IP protocol, 3/4 IPv4 or 5/6 IPv6 source and destination,
7/8 ports, 9/10 time (seconds, microseconds), 11 protocol type (1: SIP), 12 capture
agent id, 14 auth key, 15 the message, 17 correlation id (the Call-ID).
`encode` is pure; `HepSender` sends over UDP without blocking and never raises.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import struct

from sipline.server.config_values import parse_hostport

__all__ = ["HepSender", "encode"]

_PROTO = {"UDP": 17, "TCP": 6, "TLS": 6, "WS": 6, "WSS": 6}
_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE)


def _chunk(kind: int, value: bytes) -> bytes:
    return struct.pack("!HHH", 0, kind, 6 + len(value)) + value


def encode(
    data: bytes,
    transport: str,
    src: tuple[str, int],
    dst: tuple[str, int],
    at: float,
    capture_id: int,
    password: str | None = None,
) -> bytes:
    s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if s.version != d.version:  # name both in IPv6
        s = s if s.version == 6 else ipaddress.IPv6Address(f"::ffff:{s}")
        d = d if d.version == 6 else ipaddress.IPv6Address(f"::ffff:{d}")
    v6 = s.version == 6
    seconds = int(at)
    chunks = [
        _chunk(1, bytes([10 if v6 else 2])),
        _chunk(2, bytes([_PROTO.get(transport.upper(), 17)])),
        _chunk(5 if v6 else 3, s.packed),
        _chunk(6 if v6 else 4, d.packed),
        _chunk(7, struct.pack("!H", src[1])),
        _chunk(8, struct.pack("!H", dst[1])),
        _chunk(9, struct.pack("!I", seconds)),
        _chunk(10, struct.pack("!I", min(999_999, round((at - seconds) * 1e6)))),
        _chunk(11, b"\x01"),
        _chunk(12, struct.pack("!I", capture_id)),
    ]
    if password:
        chunks.append(_chunk(14, password.encode()))
    chunks.append(_chunk(15, data))
    match = _CALL_ID.search(data, 0, max(0, data.find(b"\r\n\r\n")))
    if match:
        chunks.append(_chunk(17, match.group(1).strip()))
    body = b"".join(chunks)
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


class HepSender:
    def __init__(self, address: str, capture_id: int, password: str | None) -> None:
        self.address = address
        self.target = parse_hostport(address, "hep.address")
        self.capture_id = capture_id
        self.password = password
        family = socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.failed = 0

    def send(
        self,
        sent: bool,
        data: bytes,
        transport: str,
        local: tuple[str, int],
        remote: tuple[str, int],
        at: float,
    ) -> None:
        src, dst = (local, remote) if sent else (remote, local)
        try:
            packet = encode(data, transport, src, dst, at, self.capture_id, self.password)
            self.sock.sendto(packet, self.target)
            self.sent += 1
        except (OSError, ValueError):
            self.failed += 1  # a full buffer or an unreachable collector loses a copy only

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
