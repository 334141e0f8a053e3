"""Instant messages for a user agent: sending MESSAGE (RFC 3428) and reading them.

`send_request` sends one request outside any dialog through the outbound proxy (or
by RFC 3263), answering digest challenges (§22.2); MESSAGE, SUBSCRIBE and PUBLISH
use it. `read_message` turns a received MESSAGE into an `IncomingMessage`:
`text/plain` (any `text/*`) and `message/cpim` (RFC 3862, unwrapped) are taken,
status notifications (`application/im-iscomposing+xml`, RFC 3994) accepted and
ignored, anything else refused with 415 and the Accept list (RFC 3428 §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipline.content.cpim import CONTENT_TYPE as CPIM
from sipline.content.cpim import CpimError, CpimMessage, parse_cpim
from sipline.core.builders import build_request
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import Uri
from sipline.core.views import NameAddr, parse_name_addr
from sipline.phone.events import UserAgentError

if TYPE_CHECKING:
    from sipline.phone.agent import UserAgent

__all__ = [
    "ACCEPT",
    "IncomingMessage",
    "MessageFailed",
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
    ua: UserAgent,
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
    """One request outside a dialog; digest challenges answered (at most three)."""
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
    digest = ua.digest
    if digest is not None:
        digest.apply_cached(request)
    response: Response | None = None
    for _ in range(4):
        target = await ua.first_hop(request.uri)
        response = await ua.endpoint.request(request, target)
        if response.status not in (401, 407) or digest is None:
            break
        if not digest.authorize(request, response):
            break
        request.headers.remove("Via")
        request.headers.set("CSeq", f"{request.cseq.seq + 1} {method}")
    assert response is not None  # the loop ran at least once
    return request, response


async def send_message(
    ua: UserAgent,
    target: str,
    text: str | bytes,
    *,
    content_type: str = "text/plain;charset=utf-8",
    cpim: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> Response:
    """Send a MESSAGE; the final response (2xx, or 202 when stored for later).
    Raises `MessageFailed` for a failure response."""
    uri = ua._target_uri(target)
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
