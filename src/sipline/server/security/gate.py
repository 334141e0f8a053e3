"""The proxy's relay gate: may this request be proxied to the target it names?

Kamailio's default rule: a request whose target comes from the request itself (a
Request-URI outside our domains, or a Route after ours) is proxied only for an
authenticated local user or a trusted peer. A stranger is challenged (407, realm:
the From domain when it is ours, else our first domain) and refused with 403 when
the credentials are wrong or cannot be asked for. Requests for our users are routed
by the location service to their registered contacts and pass. Emergency calls pass
always. A request in a dialog we record-routed passes: its Route naming us carries
our signature of that dialog (sipline.server.security.route_sign); a Route through us
without one is a target named by the request, like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import SipUri, Uri
from sipline.runtime.endpoint import Inbound, ServerTransaction
from sipline.server.auth import DigestAuthenticator
from sipline.server.security import log as seclog
from sipline.server.security.dialog_targets import DialogTargets
from sipline.server.security.relay import RelayPolicy
from sipline.storage.base import Binding

__all__ = ["RelayGate"]

# Never challenged: they cannot be resent with credentials (§22.1, §9.2).
_UNCHALLENGED = frozenset({"ACK", "CANCEL"})


class _Domains(Protocol):
    def is_local_domain(self, host: str) -> bool: ...

    def binding_for_contact(self, contact: str) -> Binding | None: ...

    @property
    def domains(self) -> set[str]: ...


class RelayGate:
    def __init__(
        self,
        policy: RelayPolicy,
        backend: _Domains,
        authenticator: DigestAuthenticator,
        *,
        default_realm: Callable[[], str | None],
        now: Callable[[], float],
        is_me: Callable[[Uri], bool],
    ) -> None:
        self.policy = policy
        self.backend = backend
        self.auth = authenticator
        self._default_realm = default_realm
        self._now = now
        self._is_me = is_me
        self.refused = 0
        self.dialogs = DialogTargets()

    def trusted_source(self, st: ServerTransaction) -> bool:
        host, port = st.inbound.remote[0], st.inbound.remote[1]
        return self.policy.trusted_peer(st.inbound.transport, host, port) is not None

    def learn_dialog(self, message: Request | Response) -> None:
        """The Contact of a dialog-creating INVITE we proxied for a user or peer we
        trust, or of a response to one: the remote target of that dialog (§12.1)."""
        try:
            contacts = message.contacts
        except RemoteProtocolError:
            return
        now = self._now()
        for contact in contacts:
            self.dialogs.learn(contact.uri_text, now=now)

    def _dialog_target(self, request: Request) -> bool:
        """An in-dialog request to a remote target we learnt from the dialog itself."""
        return request.to.tag is not None and self.dialogs.knows(request.uri_text, now=self._now())

    def names_foreign_target(self, request: Request) -> bool:
        """After route preprocessing (§16.4): is the next hop taken from the request
        (a Route, or a Request-URI that is neither ours nor a registered contact)?"""
        if request.routes:
            return True
        uri = request.uri
        if not isinstance(uri, SipUri):
            return False  # tel: and other schemes: no target outside our own routing
        if self.backend.is_local_domain(uri.host) or self._is_me(uri):
            return False
        if self._dialog_target(request):
            return False
        # A registered contact of one of our users (an in-dialog request to our user).
        return self.backend.binding_for_contact(request.uri_text) is None

    def internal_target(self, request: Request) -> bool:
        """A loopback, link-local or internal address named by the request itself."""
        routes = request.routes
        uri = routes[0].uri if routes else request.uri
        if not isinstance(uri, SipUri) or (not routes and self._is_me(uri)):
            return False
        if not routes and self.backend.is_local_domain(uri.host):
            return False
        if not routes and self.backend.binding_for_contact(request.uri_text) is not None:
            return False
        if not routes and self._dialog_target(request):
            return False
        host = uri.maddr or uri.host
        return self.policy.forbidden_target(uri.transport, host, uri.port)

    async def admit(
        self, st: ServerTransaction, *, authenticated: bool, in_our_dialog: bool
    ) -> bool:
        """True to proxy; False when a response (403, 407) was sent."""
        request = st.request
        if self.trusted_source(st):
            return True
        if in_our_dialog:
            return True
        if self.internal_target(request):
            return self._refuse(st, "internal-target", "Forbidden (not relaying to this address)")
        if authenticated or not self.names_foreign_target(request):
            return True
        realm = self._realm(request)
        if realm is None or request.method in _UNCHALLENGED or request.to.tag is not None:
            return self._refuse(st, "relay", "Forbidden (not relaying)")
        result = await self.auth.authenticate(
            request, realm=realm, now=self._now(), proxy=True, source=st.inbound.remote
        )
        if result.ok:
            request.headers.remove("Proxy-Authorization")  # consumed, not forwarded
            return True
        if result.refused:
            return self._refuse(st, "relay", "Forbidden (not relaying)")
        st.respond(result.status, result.reason, extra=list(result.headers))
        return False

    def admits_ack(self, request: Request, inbound: Inbound, *, in_our_dialog: bool) -> bool:
        """An ACK for a 2xx, relayed statelessly (§16.11): the same rule, without a
        challenge (an ACK cannot be resent with credentials, §22.1)."""
        source = inbound.source
        if in_our_dialog or self.policy.trusted_peer(
            source.transport, source.remote[0], source.remote[1]
        ):
            return True
        return not self.internal_target(request) and not self.names_foreign_target(request)

    def _realm(self, request: Request) -> str | None:
        """The From domain when it is ours, else our first domain."""
        from_uri = request.from_.uri
        if isinstance(from_uri, SipUri) and self.backend.is_local_domain(from_uri.host):
            return from_uri.host.lower()
        return self._default_realm()

    def _refuse(self, st: ServerTransaction, reason: str, phrase: str) -> bool:
        request = st.request
        self.refused += 1
        seclog.refused(st.inbound.remote, seclog.from_user(request), request, reason)
        st.respond(403, phrase)
        return False
