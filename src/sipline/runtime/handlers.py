"""Running the application's handlers over server transactions.

A new request goes to `on_request`; what the handler raises becomes the answer: a
`RemoteProtocolError` its own status, a "busy" error 503 with Retry-After (§21.5.4),
anything else 500 (logged: a bug). A CANCEL without a handler of its own gets the
§9.2 UAS default: 200 for the CANCEL, 487 for the INVITE if still unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.runtime.handles import ServerTransaction
from sipline.runtime.ingress import Inbound
from sipline.runtime.overload import OverloadGuard
from sipline.runtime.stats import EndpointStats
from sipline.transport import Source

__all__ = [
    "AckHandler",
    "CancelHandler",
    "HandlerHost",
    "MessageTap",
    "RequestHandler",
    "StatelessHandler",
    "StrayHandler",
    "cancel_by_default",
    "respond_if_open",
    "run_handler",
]

log = logging.getLogger("sipline.endpoint")

RequestHandler = Callable[[ServerTransaction], Awaitable[None] | None]
StatelessHandler = Callable[[Request, Inbound], Response | None]
CancelHandler = Callable[[ServerTransaction, ServerTransaction | None], None]
AckHandler = Callable[[Request, Inbound], None]
StrayHandler = Callable[[Response, Source], None]
Address = tuple[str, int]


# Sees a message as bytes: (sent, data, transport, local or None, remote).
class MessageTap(Protocol):
    """Sees every message received and sent, as bytes; a received one also parsed (None
    when it could not be, or for what is sent), so the tap need not parse it again."""

    def __call__(
        self,
        sent: bool,
        data: bytes,
        transport: str,
        local: Address | None,
        remote: Address,
        message: Request | Response | None = None,
    ) -> None: ...


class HandlerHost(Protocol):
    """What running a handler needs from the endpoint."""

    on_request: RequestHandler | None
    busy_errors: tuple[type[BaseException], ...]
    stats: EndpointStats
    overload: OverloadGuard | None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...


def run_handler(host: HandlerHost, st: ServerTransaction) -> None:
    """Hand `st` to the application; a coroutine it returns runs as a task."""
    handler = host.on_request
    if handler is None:
        st.respond(501)
        return
    try:
        result = handler(st)
    except RemoteProtocolError as exc:
        st.respond(exc.status, exc.reason)
        return
    except host.busy_errors:
        _respond_busy(host, st)
        return
    except Exception:
        host.stats.handler_errors += 1
        log.exception("request handler failed for %r", st.request)
        st.respond(500)
        return
    if inspect.isawaitable(result):
        host.spawn(_await_handler(host, st, result))


async def _await_handler(
    host: HandlerHost, st: ServerTransaction, pending: Awaitable[None]
) -> None:
    try:
        await pending
    except RemoteProtocolError as exc:
        respond_if_open(st, exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except host.busy_errors:
        _respond_busy(host, st)
    except Exception:
        host.stats.handler_errors += 1
        log.exception("request handler failed for %r", st.request)
        respond_if_open(st, 500, None)


def respond_if_open(st: ServerTransaction, status: int, reason: str | None) -> None:
    with contextlib.suppress(LocalProtocolError):  # already answered
        st.respond(status, reason)


def _respond_busy(host: HandlerHost, st: ServerTransaction) -> None:
    """§21.5.4: temporarily unable to take the request; try again later (§20.33)."""
    retry = host.overload.config.retry_after_s if host.overload is not None else 5
    host.stats.overload_rejections += 1
    with contextlib.suppress(LocalProtocolError):
        st.respond(503, extra=[("Retry-After", str(retry))])


def cancel_by_default(
    cancel_st: ServerTransaction, invite_st: ServerTransaction | None, cancel: Request
) -> None:
    """§9.2 UAS default: 200 for the CANCEL, 487 for the INVITE if still pending (481
    for a CANCEL that matches nothing)."""
    if invite_st is None:
        cancel_st.respond(481)
        return
    cancel_st.respond(200)
    invite_st.cancelled = True
    invite_st.cancel_request = cancel
    if invite_st.on_cancel is not None:
        invite_st.on_cancel()
    else:
        respond_if_open(invite_st, 487, None)
