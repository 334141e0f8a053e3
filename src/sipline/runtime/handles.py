"""What an application holds of a transaction: a request to answer, a request sent.

The transactions themselves live in the core (`sipline.core.transaction`); these
handles carry only what the application needs on top, under the core's own keys: a
`ServerTransaction` builds and sends responses (§8.2.6) and hears of a CANCEL; a
`ClientTransaction` resolves a future with the final response (§8.1.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from sipline.core.builders import build_response, new_tag
from sipline.core.clock import Entropy
from sipline.core.message import Request, Response
from sipline.core.transaction.matching import ClientKey, ServerKey
from sipline.runtime.ingress import Inbound
from sipline.transport import Target
from sipline.transport.base import FLOW_FAILED

__all__ = ["ClientTransaction", "HandleOwner", "ServerTransaction"]


class HandleOwner(Protocol):
    """What the handles need from the endpoint that made them."""

    entropy: Entropy

    def send_response(self, st: ServerTransaction, response: Response) -> None: ...

    def cancel(self, ct: ClientTransaction, reason: str | None = None) -> None: ...


class ServerTransaction:
    """A request to answer. `respond` builds the §8.2.6 response; `send` sends one."""

    __slots__ = (
        "_endpoint",
        "_to_tag",
        "cancel_request",
        "cancelled",
        "inbound",
        "key",
        "on_cancel",
        "request",
        "waiting",
    )

    def __init__(self, owner: HandleOwner, key: ServerKey, request: Request, inbound: Inbound):
        self._endpoint = owner
        self.key = key
        self.request = request
        self.inbound = inbound
        self._to_tag: str | None = None
        self.cancelled = False
        self.cancel_request: Request | None = None  # the CANCEL, for its Reason (RFC 3326)
        self.on_cancel: Callable[[], None] | None = None
        # Still waiting for this element's own work (not yet answered, nor relayed to a
        # next hop whose answer it then waits for): the overload guard's wait signal.
        self.waiting = False

    def relayed(self) -> None:
        """The request went on to a next hop: the time from here is that hop's."""
        self.waiting = False

    @property
    def to_tag(self) -> str:
        """The tag this element puts in To for its responses (one per transaction)."""
        if self._to_tag is None:
            self._to_tag = self.request.to.tag or new_tag(self._endpoint.entropy)
        return self._to_tag

    def response(
        self,
        status: int,
        reason: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        copy_record_route: bool = False,
    ) -> Response:
        return build_response(
            self.request,
            status,
            reason,
            to_tag=self.to_tag,
            extra=extra,
            body=body,
            content_type=content_type,
            copy_record_route=copy_record_route,
        )

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        copy_record_route: bool = False,
    ) -> None:
        self.send(
            self.response(
                status,
                reason,
                extra=extra,
                body=body,
                content_type=content_type,
                copy_record_route=copy_record_route,
            )
        )

    def send(self, response: Response) -> None:
        self._endpoint.send_response(self, response)


class ClientTransaction:
    """A request sent in a client transaction. `final` resolves with the first final
    response (a 408 or 503 is synthesised on timeout or transport failure, §8.1.3.1);
    `on_response` sees every response, including 2xx retransmissions from forks."""

    __slots__ = ("_endpoint", "error", "final", "key", "on_response", "request", "target")

    def __init__(
        self,
        owner: HandleOwner,
        key: ClientKey,
        request: Request,
        target: Target,
        on_response: Callable[[Response], None] | None,
    ) -> None:
        self._endpoint = owner
        self.key = key
        self.request = request
        self.target = target
        self.on_response = on_response
        self.error: str | None = None  # why sending failed, for the synthesised 503
        self.final: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

    def cancel(self, reason: str | None = None) -> None:
        """Send CANCEL for a pending INVITE (§9.1); a no-op once it has a final response.
        `reason`: a Reason header value for the CANCEL (RFC 3326)."""
        self._endpoint.cancel(self, reason)

    def deliver(self, response: Response) -> None:
        if self.on_response is not None:
            self.on_response(response)
        if response.status >= 200 and not self.final.done():
            self.final.set_result(response)

    def give_up(self, *, timed_out: bool) -> None:
        """The core ended the transaction with no final response: 408 on a timeout,
        else 503 naming the transport's failure (a refused connection, a certificate
        that failed its check: what a user can act on)."""
        if timed_out:
            self.fail(408, "Request Timeout")
        elif (self.error or "").startswith(FLOW_FAILED):
            self.fail(430, "Flow Failed")  # RFC 5626 §5.3: the phone's connection is gone
        else:
            why = " ".join((self.error or "transport failure").split())[:200]
            self.fail(503, f"Service Unavailable ({why})")

    def fail(self, status: int, reason: str) -> None:
        """End here as if the next hop had answered `status` (what the proxy's Timer C
        does to a branch that never answered, §16.8)."""
        self.deliver(build_response(self.request, status, reason))
