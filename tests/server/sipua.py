"""A small SIP user agent for server tests, on the real `Endpoint` over loopback.

It builds requests, answers digest challenges, and acts as a UAS whose behaviour a
test sets per call (`on_invite`). Everything it receives is recorded so tests can
check what crossed the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sipline.core.auth import Challenge, answer_challenge, parse_challenge, select_challenges
from sipline.core.builders import build_request
from sipline.core.clock import Clock
from sipline.core.errors import LocalProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import parse_uri
from sipline.core.views import NameAddr
from sipline.runtime.endpoint import Endpoint, Inbound, ServerTransaction
from sipline.transport import Target

HOST = "127.0.0.1"

InviteBehaviour = Callable[["TestUA", ServerTransaction], Awaitable[None] | None]


@dataclass
class Exchange:
    """A request's responses as they arrived, the final one last."""

    request: Request
    responses: list[Response] = field(default_factory=list)

    @property
    def final(self) -> Response:
        return self.responses[-1]

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]


class TestUA:
    __test__ = False  # not a test class for pytest

    def __init__(self, endpoint: Endpoint, server: Target, transport: str) -> None:
        self.ep = endpoint
        self.server = server
        self.transport = transport
        self.received: list[ServerTransaction] = []
        self.acks: list[Request] = []
        self.cancels: list[Request] = []
        self.on_invite: InviteBehaviour | None = None
        # The status a non-INVITE request is answered with (200 without it).
        self.status_for: Callable[[Request], int] | None = None
        self.pending: list[ServerTransaction] = []
        self._cseq = itertools.count(1)
        self._arrived = asyncio.Condition()
        endpoint.on_request = self._on_request
        endpoint.on_ack = self._on_ack
        endpoint.on_cancel = self._on_cancel

    @classmethod
    async def start(
        cls, server: Target, transport: str = "UDP", *, clock: Clock | None = None
    ) -> TestUA:
        ep = Endpoint(clock=clock)
        await ep.bind(transport, HOST, 0)
        return cls(ep, server, transport)

    async def close(self) -> None:
        await self.ep.close()

    @property
    def port(self) -> int:
        return self.ep.local_address(self.transport).port

    def contact(self, user: str, **params: str) -> str:
        tail = ";transport=tcp" if self.transport == "TCP" else ""
        tail += "".join(f";{k}={v}" for k, v in params.items())
        return f"sip:{user}@{HOST}:{self.port}{tail}"

    # -- requests --------------------------------------------------------------------
    def build(
        self,
        method: str,
        ruri: str,
        *,
        from_: str,
        to: str | None = None,
        call_id: str | None = None,
        cseq: int | None = None,
        contact: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        max_forwards: int = 70,
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> Request:
        extra = list(extra or [])
        if contact == "*":
            extra.insert(0, ("Contact", "*"))
            contact = None
        to_na = NameAddr.of(parse_uri(f"sip:{to or from_}"))
        if to_tag is not None:
            to_na.params.set("tag", to_tag)
        return build_request(
            method,
            parse_uri(ruri),
            from_=NameAddr.of(parse_uri(f"sip:{from_}"), tag=self.ep.new_tag()),
            to=to_na,
            call_id=call_id or self.ep.new_call_id(),
            cseq=cseq if cseq is not None else next(self._cseq),
            via=[],
            contact=NameAddr.of(parse_uri(contact)) if contact else None,
            max_forwards=max_forwards,
            extra=extra,
            body=body,
            content_type="application/sdp" if body else None,
        )

    async def send(self, request: Request, target: Target | None = None) -> Exchange:
        """Send in a client transaction; return every response, the final one last."""
        exchange = Exchange(request)
        ct = self.ep.send_request(
            request, target or self.server, on_response=exchange.responses.append
        )
        await asyncio.wait_for(ct.final, 40)
        await asyncio.sleep(0.01)  # let a response just behind the final arrive too
        return exchange

    async def send_authenticated(
        self, request: Request, username: str, password: str, target: Target | None = None
    ) -> Exchange:
        """Send; answer a 401/407 once with digest credentials (new CSeq, same Call-ID)."""
        first = await self.send(request, target)
        if first.final.status not in (401, 407):
            return first
        return await self.send(self.answer(request, first.final, username, password), target)

    def answer(
        self, request: Request, challenge: Response, username: str, password: str
    ) -> Request:
        """The same request with a new CSeq and credentials for every realm challenged."""
        name = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
        offered = [parse_challenge(v) for v in challenge.headers.get_all(name)]
        retry = self.retry(request)
        for chosen in select_challenges(offered):
            self.add_credentials(retry, chosen, username, password, proxy=challenge.status == 407)
        return retry

    def retry(self, request: Request, cseq: int | None = None) -> Request:
        """A copy of `request` to send again: no Via, a higher CSeq unless given."""
        again = Request(request.method, request.uri_text, request.headers.copy(), request.body)
        again.headers.remove("Via")
        seq = cseq if cseq is not None else next(self._cseq) + 100
        again.headers.set("CSeq", f"{seq} {request.method}")
        return again

    def add_credentials(
        self,
        request: Request,
        challenge: Challenge,
        username: str,
        password: str,
        *,
        proxy: bool = False,
        nc: int = 1,
    ) -> None:
        creds = answer_challenge(
            challenge,
            method=request.method,
            uri=request.uri_text,
            username=username,
            password=password,
            entropy=self.ep.entropy,
            nc=nc,
        )
        header = "Proxy-Authorization" if proxy else "Authorization"
        request.headers.add(header, creds.serialize())

    async def register(
        self,
        aor: str,
        password: str | None,
        *,
        contact: str | None = None,
        expires: int | None = 3600,
        call_id: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Exchange:
        user, _, domain = aor.partition("@")
        headers = list(extra or [])
        if expires is not None:
            headers.append(("Expires", str(expires)))
        request = self.build(
            "REGISTER",
            f"sip:{domain}",
            from_=aor,
            call_id=call_id,
            contact=contact if contact is not None else self.contact(user),
            extra=headers,
        )
        if password is None:
            return await self.send(request)
        return await self.send_authenticated(request, user, password)

    # -- the UAS side ----------------------------------------------------------------
    def _on_request(self, st: ServerTransaction) -> Awaitable[None] | None:
        self.received.append(st)
        self._notify()
        if st.request.method == "INVITE" and self.on_invite is not None:
            return self.on_invite(self, st)
        if st.request.method == "INVITE":
            self.pending.append(st)
            return None
        st.respond(self.status_for(st.request) if self.status_for is not None else 200)
        return None

    def _on_ack(self, request: Request, inbound: Inbound) -> None:
        self.acks.append(request)
        self._notify()

    def _on_cancel(self, cancel_st: ServerTransaction, invite_st: ServerTransaction | None) -> None:
        self.cancels.append(cancel_st.request)
        self._notify()
        if invite_st is None:
            cancel_st.respond(481)
            return
        cancel_st.respond(200)
        invite_st.respond(487)  # §9.2

    def _notify(self) -> None:
        async def wake() -> None:
            async with self._arrived:
                self._arrived.notify_all()

        self.ep.spawn(wake())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async def until() -> None:
            async with self._arrived:
                await self._arrived.wait_for(predicate)

        await asyncio.wait_for(until(), timeout)

    def requests(self, method: str) -> list[Request]:
        return [st.request for st in self.received if st.request.method == method]

    def answer_invite(self, st: ServerTransaction, status: int, user: str = "uas") -> None:
        """Answer an INVITE as a UAS: Record-Route copied and a Contact on 2xx (§12.1.1)."""
        extra = [("Contact", f"<{self.contact(user)}>")] if status < 300 else []
        st.respond(status, extra=extra, copy_record_route=status < 300 and status > 100)


def ring_then(status: int, delay_s: float = 0.0) -> InviteBehaviour:
    """A UAS that sends 180, waits `delay_s` (on its endpoint's clock), then answers
    `status`."""

    async def behave(ua: TestUA, st: ServerTransaction) -> None:
        ua.answer_invite(st, 180)
        if delay_s:
            await ua.ep.timers.sleep(delay_s)
        with contextlib.suppress(LocalProtocolError):  # CANCELled meanwhile: 487 went
            ua.answer_invite(st, status)

    return behave


def challenges_of(response: Response, name: str = "WWW-Authenticate") -> list[Challenge]:
    found = []
    for value in response.headers.get_all(name):
        parsed = parse_challenge(value)
        assert isinstance(parsed, Challenge)
        found.append(parsed)
    return found


@dataclass
class Dialog:
    """The caller's side of a dialog from an INVITE and its 2xx (§12.1.2)."""

    ua: TestUA
    invite: Request
    answer: Response

    @property
    def route_set(self) -> list[str]:
        return [str(r) for r in reversed(self.answer.record_routes)]

    @property
    def remote_target(self) -> str:
        return self.answer.contacts[0].uri_text

    def _build(self, method: str, cseq: int) -> Request:
        request = Request(method, self.remote_target)
        h = request.headers
        h.add("Max-Forwards", "70")
        for route in self.route_set:
            h.add("Route", route)
        h.add("From", self.invite.headers.get("from") or "")
        h.add("To", self.answer.headers.get("to") or "")
        h.add("Call-ID", self.invite.call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Content-Length", "0")
        return request

    def ack(self) -> Request:
        """§13.2.2.4: the ACK for the 2xx, sent end to end (no transaction)."""
        ack = self._build("ACK", self.invite.cseq.seq)
        ack.headers.add(
            "Via", self.ua.ep.via_value(self.ua.server, self.ua.ep.new_branch()), first=True
        )
        self.ua.ep.send_stateless(ack, self.ua.server)
        return ack

    async def bye(self) -> Exchange:
        return await self.ua.send(self._build("BYE", self.invite.cseq.seq + 1))
