"""Saying what a user agent command is waiting for, and what an error likely means.

A request to a server that does not answer is retransmitted for 32 s (RFC 3261
§17.1.1.2 Timer A/B, §17.1.2.2 Timer E/F) before it fails: the user hears of it
after the third retransmission (3.5 s) and again as the retransmissions go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sipline.cli.output import Output
from sipline.phone import RegistrationError

__all__ = ["NOTICE_AT_S", "auth_hint", "explain_error", "noting_silence"]

T = TypeVar("T")

# Over UDP with T1 = 0.5 s the request is sent at 0, 0.5, 1.5, 3.5, 7.5, 15.5, ... s.
NOTICE_AT_S = (3.5, 7.5, 15.5)


async def _notice(
    out: Output, request: str, server: str, transport: str, heard: Callable[[], bool]
) -> None:
    began = asyncio.get_running_loop().time()
    for at in NOTICE_AT_S:
        await asyncio.sleep(max(0.0, began + at - asyncio.get_running_loop().time()))
        if heard():
            return
        doing = "retrying" if transport.lower() == "udp" else "still waiting"
        out.emit(
            "retrying",
            f"no answer from {server} to our {request} yet, {doing}",
            request=request,
            server=server,
            waited_s=at,
        )


async def noting_silence(
    work: Awaitable[T],
    out: Output,
    request: str,
    server: str,
    transport: str,
    heard: Callable[[], bool] = lambda: False,
) -> T:
    """Await `work`; while nothing is `heard` from `server`, say so now and then."""
    notice = asyncio.ensure_future(_notice(out, request, server, transport, heard))
    try:
        return await work
    finally:
        notice.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notice


def explain_error(exc: BaseException, password: str | None) -> str:
    """The one line for an error, with what to do about a refused registration."""
    text = str(exc)
    if isinstance(exc, RegistrationError) and exc.status in (401, 407):
        return text + auth_hint(exc.status, password)
    if isinstance(exc, RegistrationError) and exc.status in (0, 408):
        return f"{text}: is the server address right (--server) and the server running?"
    return text


def auth_hint(status: int | None, password: str | None) -> str:
    """For a request refused with 401/407 after our credentials (or without any)."""
    if status not in (401, 407):
        return ""
    if password is None:
        return ": the server wants a password (--password or $SIPLINE_PASSWORD)"
    return ": wrong password or user name (--auth-user)?"
