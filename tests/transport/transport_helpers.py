"""Helpers for transport tests: real sockets on loopback only, short waits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from sipline.transport import Source, TransportError

WAIT_S = 3.0


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param(
        "::1", id="ipv6", marks=pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
    ),
]


class Inbox:
    """Collects what a layer receives; `get` waits with a bound."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Source]] = asyncio.Queue()

    def __call__(self, data: bytes, source: Source) -> None:
        self.queue.put_nowait((data, source))

    async def get(self) -> tuple[bytes, Source]:
        async with asyncio.timeout(WAIT_S):
            return await self.queue.get()


class Errors:
    """An on_error callback resolving a future with the first error."""

    def __init__(self) -> None:
        self.future: asyncio.Future[TransportError] = asyncio.get_running_loop().create_future()
        self.count = 0

    def __call__(self, error: TransportError) -> None:
        self.count += 1
        if not self.future.done():
            self.future.set_result(error)

    async def get(self) -> TransportError:
        async with asyncio.timeout(WAIT_S):
            return await self.future


async def eventually(check: Callable[[], Any], timeout: float = WAIT_S) -> None:
    """Poll a condition every few milliseconds until it holds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def free_tcp_port(host: str) -> int:
    """A port nothing listens on (bound then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def request(method: str = "OPTIONS", body: bytes = b"", tag: str = "1") -> bytes:
    return (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK{tag}\r\n"
        f"From: <sip:alice@example.com>;tag={tag}\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: call-{tag}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def response(tag: str = "1") -> bytes:
    return (
        "SIP/2.0 200 OK\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK{tag}\r\n"
        f"CSeq: 1 OPTIONS\r\nCall-ID: call-{tag}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
