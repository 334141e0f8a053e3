"""The STUN Binding exchange used as a UDP keep-alive (RFC 5626 §3.5.2, RFC 5389).

A SIP message starts with a letter; a STUN message starts with two zero bits and
carries the magic cookie at bytes 4-7 (RFC 5389 §6), so the two never mix on a
shared port. A client learns its public address from our XOR-MAPPED-ADDRESS.
"""

from __future__ import annotations

import ipaddress
import struct

__all__ = ["binding_response", "is_stun"]

_MAGIC_COOKIE = 0x2112A442
_HEADER = struct.Struct("!HHI12s")
_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101
_XOR_MAPPED_ADDRESS = 0x0020


def is_stun(data: bytes) -> bool:
    """Whether a datagram looks like a STUN message (RFC 5389 §6)."""
    return (
        len(data) >= _HEADER.size
        and data[0] & 0xC0 == 0
        and data[4:8] == _MAGIC_COOKIE.to_bytes(4, "big")
        and len(data) == _HEADER.size + int.from_bytes(data[2:4], "big")
    )


def binding_response(request: bytes, remote: tuple[str, int]) -> bytes | None:
    """The success response to a Binding request, or None for any other STUN message."""
    kind, _length, _cookie, transaction_id = _HEADER.unpack_from(request)
    if kind != _BINDING_REQUEST:
        return None
    address = ipaddress.ip_address(remote[0])
    port = remote[1] ^ (_MAGIC_COOKIE >> 16)
    # RFC 5389 §15.2: the address is XORed with the cookie (and, for IPv6, the
    # transaction ID after it), so middleboxes rewriting addresses leave it alone.
    mask = _MAGIC_COOKIE.to_bytes(4, "big") + transaction_id
    packed = bytes(a ^ b for a, b in zip(address.packed, mask, strict=False))
    family = 0x01 if address.version == 4 else 0x02
    value = struct.pack("!BBH", 0, family, port) + packed
    attribute = struct.pack("!HH", _XOR_MAPPED_ADDRESS, len(value)) + value
    header = _HEADER.pack(_BINDING_SUCCESS, len(attribute), _MAGIC_COOKIE, transaction_id)
    return header + attribute
