"""Registering with a registrar (RFC 3261 §10.2) and keeping the binding alive.

One Call-ID for the life of the registration and a CSeq that goes up (§10.2.4);
digest challenges answered (§22.2, by the agent's `RequestSender`); 423 Interval Too
Brief answered with the Min-Expires asked for (§10.2.8); the binding refreshed before
the granted time runs out; CRLF keep-alives to the registrar so a NAT keeps our mapping (RFC 5626 §3.5.1
over TCP, the RFC 3261 §7.5 empty-line form over UDP); the binding removed on close.

NAT: the registrar's 200 tells where our REGISTER really came from (Via received and
rport, RFC 3581). When that differs from our Contact, we register the public address
instead, and calls advertise it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sipline.core.builders import build_request
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.retry import is_transient
from sipline.core.uri import SipUri, parse_uri
from sipline.core.views import NameAddr
from sipline.phone.events import RegistrationError
from sipline.phone.requests import RequestSender, renew
from sipline.runtime.endpoint import Endpoint
from sipline.runtime.timers import Timer
from sipline.transport import Target

__all__ = ["Registration"]

log = logging.getLogger("sipline.ua")

# After a refresh that failed for a reason that may pass: RFC 5626 §4.5's backoff,
# base-time 30 s doubling per consecutive failure up to max-time 1800 s.
_RETRY_S = 30.0
_MAX_RETRY_S = 1800.0


class Registration:
    """The binding of one contact to an address-of-record at one registrar."""

    def __init__(
        self,
        endpoint: Endpoint,
        sender: RequestSender,
        *,
        aor: SipUri,
        registrar: Target,
        contact: Callable[[], NameAddr],
        expires_s: int = 600,
        keepalive_s: float | None = 25.0,
        headers: Callable[[], list[tuple[str, str]]] = list,
        on_public_address: Callable[[str, int], None] | None = None,
        outbound: bool = False,
        instance_id: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.sender = sender
        self.aor = aor
        self.registrar = registrar
        self._contact = contact
        self.expires_s = expires_s
        self.keepalive_s = keepalive_s
        self._headers = headers
        self._on_public = on_public_address
        # RFC 5626 §4.2: over a connection, register one flow: instance and reg-id.
        self._contact_params: list[tuple[str, str]] = (
            [("+sip.instance", f'"<{instance_id}>"'), ("reg-id", "1")]
            if outbound and instance_id
            else []
        )
        self.call_id = endpoint.new_call_id()
        self.from_tag = endpoint.new_tag()
        self.cseq = 0
        self.granted_s: int | None = None
        self.last_status: int | None = None
        self._registered_contact: str | None = None
        self._refresh: Timer | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.refreshes = 0
        self.keepalives_sent = 0
        self.failures = 0  # consecutive failed refreshes
        # The refusal that ended refreshing (403, a wrong password...): not retried.
        self.refused: RegistrationError | None = None

    @property
    def registered(self) -> bool:
        return self.granted_s is not None and self.granted_s > 0

    def _request(self, contact: str, expires: int) -> Request:
        self.cseq += 1
        uri = SipUri("sips" if self.aor.secure else "sip", None, None, self.aor.host, self.aor.port)
        return build_request(
            "REGISTER",
            uri,
            from_=NameAddr.of(self.aor, tag=self.from_tag),
            to=NameAddr.of(self.aor),
            call_id=self.call_id,
            cseq=self.cseq,
            via=[],
            contact=self._contact_value(contact),
            extra=[*self._headers(), ("Expires", str(expires))],
        )

    def _contact_value(self, contact: str) -> NameAddr:
        value = NameAddr(contact)
        for name, param in self._contact_params:
            value.params.set(name, param)
        return value

    def _next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq

    async def _send(self, contact: str, expires: int) -> Response:
        """One REGISTER, with the challenges (`RequestSender`) and the 423 Interval Too
        Brief retries (§10.2.8) it may need."""
        request = self._request(contact, expires)
        for _ in range(3):
            response = await self.sender.send(request, self.registrar, next_cseq=self._next_cseq)
            minimum = response.headers.get("min-expires")
            if response.status != 423 or minimum is None or not minimum.strip().isdigit():
                return response
            request.headers.set("Expires", minimum.strip())
            renew(request, self._next_cseq)
        return response

    async def register(self) -> Response:
        """Register (or refresh) our contact; raises `RegistrationError` on failure."""
        contact = str(self._contact().uri)
        response = await self._send(contact, self.expires_s)
        self.last_status = response.status
        if not 200 <= response.status < 300:
            self.granted_s = None
            raise RegistrationError(response.status, response.reason)
        if self._learn_public_address(response):
            # Our REGISTER came from elsewhere than we said (NAT): register that address.
            public = str(self._contact().uri)
            if public != contact:
                with contextlib.suppress(RegistrationError, RemoteProtocolError):
                    await self._send(contact, 0)
                response = await self._send(public, self.expires_s)
                self.last_status = response.status
                if not 200 <= response.status < 300:
                    raise RegistrationError(response.status, response.reason)
                contact = public
        self._registered_contact = contact
        self.granted_s = _granted(response, contact, self.expires_s)
        self._schedule_refresh()
        self._start_keepalive()
        return response

    def _learn_public_address(self, response: Response) -> bool:
        if self._on_public is None:
            return False
        try:
            via = response.top_via
        except RemoteProtocolError:
            return False
        host, port = via.received, via.rport
        if host is None and port is None:
            return False
        ours = self._contact().uri
        assert isinstance(ours, SipUri)
        public_host = host or ours.host
        public_port = port or ours.port or 5060
        if (public_host, public_port) == (ours.host, ours.port or 5060):
            return False
        self._on_public(public_host, public_port)
        return True

    def _schedule_refresh(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        granted = self.granted_s or self.expires_s
        # Refresh ahead of expiry: a tenth of the time or at least 5 s, never past half.
        margin = min(max(granted * 0.1, 5.0), granted / 2)
        timers = self.endpoint.timers
        self._refresh = timers.call_later(max(1.0, granted - margin), self._spawn_refresh)

    def _spawn_refresh(self) -> None:
        task = asyncio.get_running_loop().create_task(self._do_refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _do_refresh(self) -> None:
        self._refresh = None
        try:
            await self.register()
            self.refreshes += 1
            self.failures = 0
        except RegistrationError as exc:
            if exc.status and not is_transient(exc.status):
                # The registrar judged and refused it (403, 404, credentials it does
                # not take): the same REGISTER gets the same answer, and repeating a
                # failing password only looks like an attack.
                self.refused = exc
                log.error("%s: not retrying; the registration lapses", exc)
                return
            self._retry_later(exc)
        except OSError as exc:
            self._retry_later(exc)

    def _retry_later(self, exc: Exception) -> None:
        self.failures += 1
        delay = min(_MAX_RETRY_S, _RETRY_S * 2 ** (self.failures - 1))
        log.warning("registration refresh failed: %s; retrying in %.0f s", exc, delay)
        self._refresh = self.endpoint.timers.call_later(delay, self._spawn_refresh)

    def _start_keepalive(self) -> None:
        if self.keepalive_s is None or self._keepalive is not None:
            return
        self._keepalive = asyncio.get_running_loop().create_task(self._keepalives())

    async def _keepalives(self) -> None:
        assert self.keepalive_s is not None
        while True:
            await self.endpoint.timers.sleep(self.keepalive_s)
            if self._contact_params and self._flow_lost():
                # RFC 5626 §4.4.1: the flow failed; register again at once (a new
                # connection, the same instance and reg-id) so calls can reach us.
                log.info("the connection to the registrar closed: registering again")
                with contextlib.suppress(RegistrationError, RemoteProtocolError, OSError):
                    await self.register()
                    self.refreshes += 1
                continue
            # A double CRLF: over UDP an empty message the registrar drops (§7.5), over
            # a connection the RFC 5626 §3.5.1 ping its transport answers with a pong.
            self.endpoint.transports.send(b"\r\n\r\n", self.registrar)
            self.keepalives_sent += 1

    def _flow_lost(self) -> bool:
        connection = self.endpoint.transports.connection_for(self.registrar)
        return connection is None or connection.is_closed

    async def unregister(self) -> Response | None:
        """Remove our binding (Expires: 0) and stop refreshing."""
        self.stop()
        if self._registered_contact is None:
            return None
        contact, self._registered_contact = self._registered_contact, None
        self.granted_s = None
        return await self._send(contact, 0)

    def stop(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        for task in list(self._tasks):
            task.cancel()


def _granted(response: Response, contact: str, asked: int) -> int:
    """The time the registrar granted our contact (§10.2.4): its expires parameter in
    the 200, else the Expires header, else what we asked."""
    try:
        ours = parse_uri(contact)
        for c in response.contacts:
            # §19.1.4 comparison: a registrar may write the URI back differently.
            if (c.uri_text == contact or c.uri == ours) and c.expires is not None:
                return c.expires
    except RemoteProtocolError:
        pass
    expires = response.headers.get("expires")
    if expires is not None and expires.strip().isdigit():
        return int(expires.strip())
    return asked
