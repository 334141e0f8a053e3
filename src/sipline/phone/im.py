"""Instant messages for a user agent: sending MESSAGE (RFC 3428) and reading them.

`send_request` sends one request outside any dialog through the outbound proxy (or
by RFC 3263), challenges answered by the agent's `RequestSender`; MESSAGE, SUBSCRIBE
and PUBLISH use it. `read_message` turns a received MESSAGE into an `IncomingMessage`
(`MessageInbox` answers it and hands it to a handler or a queue):
`text/plain` (any `text/*`) and `message/cpim` (RFC 3862, unwrapped) are taken,
status notifications (`application/im-iscomposing+xml`, RFC 3994) accepted and
ignored, anything else refused with 415 and the Accept list (RFC 3428 §7).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sipline.content.cpim import CONTENT_TYPE as CPIM
from sipline.content.cpim import CpimError, CpimMessage, parse_cpim
from sipline.core.builders import build_request
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import Uri
from sipline.core.views import NameAddr, parse_name_addr
from sipline.phone.events import UserAgentError
from sipline.phone.services import AgentServices
from sipline.runtime.endpoint import ServerTransaction

__all__ = [
    "ACCEPT",
    "IncomingMessage",
    "MessageFailed",
    "MessageInbox",
    "read_message",
    "send_message",
    "send_request",
]

ACCEPT = "text/plain, message/cpim"
IS_COMPOSING = "application/im-iscomposing+xml"


class MessageFailed(UserAgentError):  # noqa: N818 (named like CallFailed)
    """A MESSAGE was not accepted; `status` is the final response (0: none)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"message not delivered: {status} {reason}".strip())
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message received: who sent it (`sender`, a URI), its text, and the raw body."""

    sender: str
    text: str
    content_type: str
    body: bytes
    display_name: str | None = None
    date: str | None = None  # Date (a stored message says when it was sent) or CPIM DateTime
    subject: str | None = None


async def send_request(
    ua: AgentServices,
    method: str,
    uri: Uri,
    *,
    to: NameAddr | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    contact: bool = False,
    call_id: str | None = None,
    from_tag: str | None = None,
) -> tuple[Request, Response]:
    """One request outside a dialog, challenges answered (`RequestSender`)."""
    await ua.start()
    request = build_request(
        method,
        uri,
        from_=NameAddr.of(
            ua.config.aor, ua.config.display_name, tag=from_tag or ua.endpoint.new_tag()
        ),
        to=to or NameAddr.of(uri),
        call_id=call_id or ua.endpoint.new_call_id(),
        cseq=1,
        via=[],
        contact=ua.contact() if contact else None,
        routes=ua.initial_routes(),
        body=body,
        content_type=content_type,
        extra=[("User-Agent", ua.config.user_agent), *(extra or [])],
    )
    target = await ua.first_hop(request.uri)
    response = await ua.sender.send(request, target)
    return request, response


async def send_message(
    ua: AgentServices,
    target: str,
    text: str | bytes,
    *,
    content_type: str = "text/plain;charset=utf-8",
    cpim: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> Response:
    """Send a MESSAGE; the final response (2xx, or 202 when stored for later).
    Raises `MessageFailed` for a failure response."""
    uri = ua.target_uri(target)
    body = text.encode("utf-8") if isinstance(text, str) else text
    if cpim:
        wrapped = CpimMessage.wrap(body, content_type, from_=f"<{ua.config.aor}>", to=f"<{uri}>")
        body, content_type = wrapped.serialize(), CPIM
    _, response = await send_request(
        ua, "MESSAGE", uri, body=body, content_type=content_type, extra=extra
    )
    if response.status >= 300:
        raise MessageFailed(response.status, response.reason)
    return response


class MessageInbox:
    """Messages received (RFC 3428): answered, then handed to `handler` or queued."""

    def __init__(
        self,
        handler: Callable[[IncomingMessage], Awaitable[None] | None] | None,
        spawn: Callable[[Coroutine[Any, Any, object]], None],
    ) -> None:
        self.handler = handler
        self._spawn = spawn
        self._queue: asyncio.Queue[IncomingMessage] = asyncio.Queue()

    async def next(self) -> IncomingMessage:
        return await self._queue.get()

    def empty(self) -> bool:
        return self._queue.empty()

    def on_message(self, st: ServerTransaction) -> None:
        """RFC 3428 §7: 200 for a message we can show, 415 with Accept otherwise."""
        found = read_message(st.request)
        if isinstance(found, int):
            extra = [("Accept", ACCEPT)] if found == 415 else []
            st.respond(found, extra=extra)
            return
        st.respond(200)
        if found is None:
            return
        if self.handler is not None:
            result = self.handler(found)
            if inspect.isawaitable(result):
                self._spawn(_awaited(result))
        else:
            self._queue.put_nowait(found)


async def _awaited(result: Awaitable[None]) -> None:
    await result


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _decode(body: bytes, content_type: str) -> str:
    try:
        return body.decode(_charset(content_type), errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def read_message(request: Request) -> IncomingMessage | int | None:
    """The message a MESSAGE carries; None for a notification to accept silently;
    the status to refuse it with (415, 400) otherwise."""
    ctype = (request.content_type or "text/plain").strip()
    base = ctype.partition(";")[0].strip().lower()
    sender_na = request.from_
    date = request.headers.get("date")
    subject = request.headers.get("subject")
    if base == IS_COMPOSING:
        return None
    if base == CPIM:
        try:
            inner = parse_cpim(request.body)
        except CpimError:
            return 400
        inner_type = inner.content_type
        if not inner_type.lower().startswith("text/"):
            return 415
        sender = sender_na.uri_text
        display = sender_na.display
        if inner.from_:
            try:
                na = parse_name_addr(inner.from_, "From")
                sender, display = na.uri_text, na.display or display
            except RemoteProtocolError:
                pass
        return IncomingMessage(
            sender,
            _decode(inner.content, inner_type),
            inner_type,
            request.body,
            display,
            inner.datetime or date,
            inner.get("Subject") or subject,
        )
    if not base.startswith("text/"):
        return 415
    return IncomingMessage(
        sender_na.uri_text,
        _decode(request.body, ctype),
        ctype,
        request.body,
        sender_na.display,
        date,
        subject,
    )
