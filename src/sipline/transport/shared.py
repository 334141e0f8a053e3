"""Sockets a supervising process prepares for its worker processes.

`sipline serve --workers N` binds every public listener N times with SO_REUSEPORT,
one socket per worker, and keeps them open across worker restarts; the kernel then
hashes each UDP datagram (and each new TCP connection) by its 4-tuple to one of the
sockets, so one peer's retransmissions, ACK and CANCEL reach the worker that holds
its transaction. Every worker sends from these public sockets too, and names them in
its Via: a response the kernel gives to another worker is handed over by the branch
(runtime/siblings.py, transport/channel.py). `probe` first binds the address without SO_REUSEPORT: that fails when
anything else holds it, even another process that set SO_REUSEPORT itself (which
Linux would otherwise let us share silently).
"""

from __future__ import annotations

import socket

from sipline.transport.udp import bind_udp_socket

__all__ = ["probe", "shared_socket"]

_BACKLOG = 1024


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def probe(transport: str, host: str, port: int) -> int:
    """Check that (host, port) is free for `transport`; returns the port (port 0
    picks a free one). Raises OSError (EADDRINUSE, EADDRNOTAVAIL, ...) otherwise."""
    kind = socket.SOCK_DGRAM if transport.upper() == "UDP" else socket.SOCK_STREAM
    with socket.socket(_family(host), kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if ":" in host:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        bound: int = sock.getsockname()[1]
    return bound


def shared_socket(transport: str, host: str, port: int, buffer_bytes: int) -> socket.socket:
    """One worker's socket on the public (host, port), bound with SO_REUSEPORT (a TCP
    or TLS one listening already, so connections queue while its worker restarts)."""
    if transport.upper() == "UDP":
        return bind_udp_socket(host, port, buffer_bytes, reuse_port=True)
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if ":" in host:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
