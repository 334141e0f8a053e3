"""pcap files of SIP messages (`sipline trace CALL-ID --pcap FILE`), for Wireshark.

Link type 101 (raw IP): each message becomes one IPv4 or IPv6 packet carrying one UDP
datagram from its source to its destination address, stamped with the time it was
seen. Messages that went over TCP, TLS or WebSocket are written as UDP too, one
message per datagram, so Wireshark decodes each on its own (it has no stream to
reassemble, and TLS is shown decrypted). Pure: bytes in, bytes out.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LINKTYPE_RAW", "Packet", "pcap_bytes"]

LINKTYPE_RAW = 101
_MAGIC = 0xA1B2C3D4  # microsecond timestamps


@dataclass(frozen=True, slots=True)
class Packet:
    at: float  # Unix time
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_udp(p: Packet) -> bytes:
    src, dst = ipaddress.ip_address(p.src[0]), ipaddress.ip_address(p.dst[0])
    payload = p.payload[: 65535 - 48]
    udp_len = 8 + len(payload)
    # The UDP checksum is optional over IPv4 (RFC 768); zero says "none". Over IPv6
    # it is required (RFC 8200 §8.1), so it is computed there.
    if src.version == 4 and dst.version == 4:
        udp = struct.pack("!HHHH", p.src[1], p.dst[1], udp_len, 0) + payload
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, src.packed, dst.packed
        )
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + udp
    s6 = src.packed if src.version == 6 else ipaddress.IPv6Address(f"::ffff:{src}").packed
    d6 = dst.packed if dst.version == 6 else ipaddress.IPv6Address(f"::ffff:{dst}").packed
    pseudo = s6 + d6 + struct.pack("!I3xB", udp_len, 17)
    body = struct.pack("!HHHH", p.src[1], p.dst[1], udp_len, 0) + payload
    padded = pseudo + body + (b"\0" if len(body) % 2 else b"")
    checksum = _checksum(padded) or 0xFFFF
    udp = body[:6] + struct.pack("!H", checksum) + body[8:]
    header = struct.pack("!IHBB16s16s", 6 << 28, udp_len, 17, 64, s6, d6)
    return header + udp


def pcap_bytes(packets: Iterable[Packet]) -> bytes:
    out = [struct.pack("<IHHiIII", _MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_RAW)]
    for p in packets:
        frame = _ip_udp(p)
        seconds = int(p.at)
        micros = min(999_999, round((p.at - seconds) * 1_000_000))
        out.append(struct.pack("<IIII", seconds, micros, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)
