"""The registrar: REGISTER processing per RFC 3261 §10.3, with Path (RFC 3327) and
outbound flows (RFC 5626 §6).

`Registrar.handle` follows the numbered steps of §10.3; the comments cite them.
Bindings live in the store behind `AsyncStore`; the 200 is built only after the
transaction holding the changes has committed, and lists every current binding
with the seconds it has left (step 8). REGISTERs for one address-of-record are
processed one at a time, so the Call-ID/CSeq comparison of step 7 always sees the
bindings the previous request left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate

from sipline.core.builders import REASON_PHRASES, build_response, new_tag
from sipline.core.clock import Entropy
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import SipUri, Uri, parse_uri, unescape
from sipline.core.views import NameAddr
from sipline.server.auth import DigestAuthenticator
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Binding, StoreBusyError, StoreError

__all__ = ["Registrar", "RegistrarConfig"]

# (transport, host, port) the request arrived from.
Source = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    """Registrar policy. Expiry values are seconds."""

    default_expires_s: int = 3600  # neither a Contact expires param nor Expires (§10.2.1.1)
    min_expires_s: int = 60  # below this (and above 0): 423 Interval Too Brief
    max_expires_s: int = 7200  # longer requests are shortened (§10.3 step 7 allows it)
    # Record the source address of a REGISTER whose Contact names another host or
    # port, so requests reach a UA behind NAT (like Kamailio's fix_nated_register).
    fix_nated_register: bool = True
    # Bindings one address-of-record may hold: a REGISTER that would leave more is
    # refused 403 (§10.3 step 4: the registrar decides what a user may bind), so one
    # request cannot make hundreds of bindings (each a fork target of every call).
    max_contacts: int = 10
    supported: tuple[str, ...] = ("path", "outbound")

    def __post_init__(self) -> None:
        if not 0 <= self.min_expires_s <= self.default_expires_s <= self.max_expires_s:
            raise ValueError("need 0 <= min_expires_s <= default_expires_s <= max_expires_s")


def registration_domain(request: Request, names_me: Callable[[SipUri], bool] | None) -> str:
    """§10.3 step 1: the domain a REGISTER is for. Its Request-URI names the domain;
    a REGISTER addressed to the registrar's own address (a phone set up with
    registrar = the server's IP, account = alice@example.com) is for the To domain."""
    ruri = request.uri
    assert isinstance(ruri, SipUri)
    if names_me is not None and names_me(ruri):
        to_uri = request.to.uri
        if isinstance(to_uri, SipUri):
            return to_uri.host.lower()
    return ruri.host.lower()


class _RejectError(Exception):
    """Stop processing and answer with this status."""

    def __init__(
        self, status: int, reason: str | None = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(slots=True)
class _Change:
    binding: Binding | None  # None: remove
    replaces: str | None  # the stored contact this change replaces, if any


class Registrar:
    """Answers REGISTER requests for the domains in the store.

    `domains` are served besides those in the store. With `authenticator` None every request is accepted unauthenticated (tests,
    closed networks); otherwise the realm is the domain and the authenticated user
    must be the user part of the To address-of-record.
    """

    def __init__(
        self,
        store: AsyncStore,
        *,
        entropy: Entropy,
        authenticator: DigestAuthenticator | None,
        config: RegistrarConfig | None = None,
        domains: Iterable[str] = (),
        names_me: Callable[[SipUri], bool] | None = None,
    ) -> None:
        self.store = store
        self._domains = {d.lower() for d in domains}
        # Does a Request-URI name this server itself (its address, not a domain)?
        self._names_me = names_me
        self.config = config if config is not None else RegistrarConfig()
        self._entropy = entropy
        self._auth = authenticator
        self._supported = {t.lower() for t in self.config.supported}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        # The URI naming the flow a REGISTER came on and the process holding it
        # (server/hops.py `Flows.flow_uri`), recorded in each binding; None: not kept.
        self.flow_uri: Callable[[str, str, int], str | None] | None = None

    # --- entry points ---------------------------------------------------------------------

    async def handle(
        self, request: Request, *, source: Source, now_wall: float, now: float
    ) -> Response:
        """The final response to a REGISTER received from `source`.

        `now_wall` (epoch seconds) stamps bindings and the Date header; `now`
        (monotonic seconds) dates digest nonces.
        """
        try:
            return await self._handle(request, source, now_wall, now)
        except _RejectError as r:
            return self._response(request, r.status, r.reason, list(r.headers))
        except RemoteProtocolError as e:
            return self._response(request, e.status, f"{_phrase(e.status)} ({e.reason})", [])

    async def purge(self, *, now_wall: float) -> int:
        """Drop every expired binding; the runtime calls this now and then."""
        return await self.store.purge_expired(now_wall)

    # --- §10.3 ----------------------------------------------------------------------------

    async def _handle(
        self, request: Request, source: Source, now_wall: float, now: float
    ) -> Response:
        if request.method != "REGISTER":
            raise _RejectError(405, None, (("Allow", "REGISTER"),))
        # Step 1: the Request-URI names the domain; we serve only our own.
        ruri = request.uri
        if not isinstance(ruri, SipUri):
            raise _RejectError(416, "Unsupported URI Scheme (Request-URI)")
        domain = registration_domain(request, self._names_me)
        if domain not in self._domains and not await self.store.has_domain(domain):
            raise _RejectError(404, "Not Found (domain not served)")
        # Step 2: every option tag in Require must be one we support (§8.2.2.3).
        unsupported = [
            t for t in request.option_tags("require") if t.lower() not in self._supported
        ]
        if unsupported:
            raise _RejectError(420, None, (("Unsupported", ", ".join(unsupported)),))
        # Step 3: authenticate (§22).
        user: str | None = None
        if self._auth is not None:
            result = await self._auth.authenticate(
                request, realm=domain, now=now, source=(source[1], source[2])
            )
            if not result.ok:
                raise _RejectError(result.status, result.reason, result.headers)
            user = result.username
        # §10.2: the address-of-record in To MUST be a SIP or SIPS URI.
        to_uri = request.to.uri
        if not isinstance(to_uri, SipUri):
            raise _RejectError(400, "Bad Request (To must be a SIP or SIPS URI)")
        # Step 4: may this user modify this AOR? Here: only their own.
        if user is not None and (to_uri.user is None or unescape(to_uri.user) != user):
            raise _RejectError(403, "Forbidden (not allowed to register this address)")
        # Step 5: the AOR must be in the Request-URI's domain; canonical form: no
        # parameters, escapes decoded (SipUri.aor).
        if to_uri.host.lower() != domain:
            raise _RejectError(404, "Not Found (address not in this domain)")
        aor = to_uri.aor
        async with self._aor_lock(aor):
            current = await self._update(request, aor, source, now_wall)
        return self._ok(request, current, now_wall)

    async def _update(
        self, request: Request, aor: str, source: Source, now_wall: float
    ) -> list[Binding]:
        # The bindings in memory, which follow the store's change feed (no store read per
        # REGISTER): one device's REGISTERs reach one process (SO_REUSEPORT hashes its
        # address, a connection stays with its worker), so only two devices of one AOR
        # registering at two processes within a feed interval could see each other late.
        existing = self.store.bindings(aor)
        expired = [b.contact for b in existing if b.expires_at <= now_wall]
        live = [b for b in existing if b.expires_at > now_wall]
        call_id, cseq = request.call_id, request.cseq.seq
        remove: list[str] = []
        upsert: list[Binding] = []
        if request.contact_is_star:
            # Step 6: "*" only alone and with Expires: 0; it removes every binding,
            # subject to the same Call-ID/CSeq rule as step 7.
            if request.expires != 0:
                raise _RejectError(400, "Bad Request (Contact: * needs Expires: 0)")
            for b in live:
                _check_order(b, call_id, cseq)
            remove = [b.contact for b in live]
        else:
            changes = self._contact_changes(request, aor, live, source, now_wall)
            for change in changes.values():
                if change.replaces is not None:
                    remove.append(change.replaces)
                if change.binding is not None:
                    upsert.append(change.binding)
            # A refresh keeps its stored contact key; only drop what is really replaced.
            kept = {b.contact for b in upsert}
            remove = [c for c in remove if c not in kept]
            self._check_count(live, upsert, remove)
        remove += expired
        if remove or upsert:
            try:
                await self.store.update_bindings(aor, upsert=upsert, remove=remove)
            except StoreBusyError:
                # The store's queue is full: nothing applied; try again later (§21.5.4).
                raise _RejectError(503, None, (("Retry-After", "5"),)) from None
            except StoreError:
                # Step 7: a failed commit fails the request with 500; nothing applied.
                raise _RejectError(500, "Server Internal Error (bindings not saved)") from None
        return self.store.bindings(aor, now=now_wall)

    def _check_count(self, live: list[Binding], upsert: list[Binding], remove: list[str]) -> None:
        """Refuse a REGISTER that would leave the AOR more bindings than allowed and
        more than it has now (a refresh at the limit still works)."""
        before = {b.contact for b in live}
        after = (before - set(remove)) | {b.contact for b in upsert}
        cap = self.config.max_contacts
        if len(after) > cap and len(after) > len(before):
            raise _RejectError(403, f"Forbidden (too many contacts: at most {cap} per address)")

    def _contact_changes(
        self, request: Request, aor: str, live: list[Binding], source: Source, now_wall: float
    ) -> dict[str, _Change]:
        contacts = request.contacts
        header_expires = request.expires
        outbound = "outbound" in self._supported and "outbound" in {
            t.lower() for t in request.option_tags("supported")
        }
        if outbound and len(contacts) > 1 and any("reg-id" in c.params for c in contacts):
            # RFC 5626 §6: one Contact only when it carries a reg-id.
            raise _RejectError(400, "Bad Request (reg-id with more than one Contact)")
        path = tuple(request.headers.values("path")) if "path" in self._supported else ()
        user_agent = request.headers.get("user-agent")
        # Behind a Path the flow is the edge proxy's, which routes back itself.
        flow = self.flow_uri(*source) if self.flow_uri is not None and not path else None
        parsed = {b.contact: _safe_uri(b.contact) for b in live}
        changes: dict[str, _Change] = {}
        for contact in contacts:
            uri = contact.uri  # 400 when malformed
            expires = self._expiry(contact, header_expires)
            instance = contact.params.get("+sip.instance")
            reg_id = _reg_id(contact) if outbound and instance is not None else None
            # Step 7: find the binding this contact updates: by instance and reg-id for
            # an outbound flow (RFC 5626 §6), else by URI comparison (§19.1.4).
            if reg_id is not None:
                match = next(
                    (b for b in live if b.instance == instance and b.reg_id == reg_id), None
                )
            else:
                match = next((b for b in live if parsed[b.contact] == uri), None)
            if match is not None:
                _check_order(match, request.call_id, request.cseq.seq)
            key = match.contact if match is not None else contact.uri_text
            if expires == 0:
                changes[key] = _Change(None, match.contact if match is not None else None)
                continue
            changes[key] = _Change(
                Binding(
                    aor=aor,
                    contact=contact.uri_text,
                    expires_at=now_wall + expires,
                    call_id=request.call_id,
                    cseq=request.cseq.seq,
                    q=contact.q,
                    path=path,
                    instance=instance,
                    reg_id=reg_id,
                    received=self._received(uri, source, path, outbound=reg_id is not None),
                    user_agent=user_agent,
                    params=_other_params(contact),
                    updated_at=now_wall,
                    flow=flow,
                ),
                match.contact if match is not None else None,
            )
        return changes

    def _expiry(self, contact: NameAddr, header_expires: int | None) -> int:
        """Step 7: the Contact's expires param, else Expires, else our default."""
        cfg = self.config
        expires = contact.expires
        if expires is None:
            expires = header_expires if header_expires is not None else cfg.default_expires_s
        if 0 < expires < cfg.min_expires_s and expires < 3600:
            # §10.3 step 7 / §21.4.17: 423 with the shortest interval we accept.
            raise _RejectError(423, None, (("Min-Expires", str(cfg.min_expires_s)),))
        return min(expires, cfg.max_expires_s)

    def _received(
        self, uri: Uri, source: Source, path: tuple[str, ...], *, outbound: bool = False
    ) -> str | None:
        # Behind a Path the source is the edge proxy, which routes back itself. An
        # outbound registration (reg-id) is its flow whatever the NAT setting: RFC 5626
        # §6 has requests for it go back over the connection it came on.
        if path or not isinstance(uri, SipUri):
            return None
        if not self.config.fix_nated_register and not outbound:
            return None
        transport, host, port = source
        default_port = 5061 if uri.secure or transport.lower() in ("tls", "wss") else 5060
        contact_port = uri.port if uri.port is not None else default_port
        if uri.host.strip("[]").lower() == host.strip("[]").lower() and contact_port == port:
            return None
        return f"{transport.lower()}:{host}:{port}"

    # --- responses ------------------------------------------------------------------------

    def _ok(self, request: Request, bindings: list[Binding], now_wall: float) -> Response:
        # Step 8: every current binding with its remaining time, and a Date.
        extra: list[tuple[str, str]] = []
        for b in bindings:
            value = f"<{b.contact}>{b.params};expires={b.remaining_s(now_wall)}"
            if b.q is not None:
                value += f";q={_format_q(b.q)}"
            extra.append(("Contact", value))
        extra.append(("Date", formatdate(now_wall, usegmt=True)))
        supported = []
        if "path" in self._supported and request.headers.get_all("path"):
            # RFC 3327 §5.3: the registrar returns the Path it stored, in order.
            extra.extend(("Path", v) for v in request.headers.get_all("path"))
            supported.append("path")
        if any(b.reg_id is not None for b in bindings) and "outbound" in {
            t.lower() for t in request.option_tags("supported")
        }:
            supported.append("outbound")  # RFC 5626 §6: outbound processing was done
        if supported:
            extra.append(("Supported", ", ".join(supported)))
        return self._response(request, 200, None, extra)

    def _response(
        self, request: Request, status: int, reason: str | None, extra: list[tuple[str, str]]
    ) -> Response:
        try:
            tag: str | None = new_tag(self._entropy) if request.to.tag is None else None
        except RemoteProtocolError:
            tag = None  # a malformed To cannot take a tag; build_response copies it as is
        return build_response(request, status, reason, to_tag=tag, extra=extra)

    # --- per-AOR serialisation ------------------------------------------------------------

    def _aor_lock(self, aor: str) -> _AorLock:
        return _AorLock(self._locks, aor)


class _AorLock:
    """An asyncio.Lock per AOR, dropped when nobody holds or waits for it."""

    __slots__ = ("_aor", "_lock", "_table")

    def __init__(self, table: dict[str, tuple[asyncio.Lock, int]], aor: str) -> None:
        self._table = table
        self._aor = aor
        lock, users = table.get(aor, (asyncio.Lock(), 0))
        table[aor] = (lock, users + 1)
        self._lock = lock

    async def __aenter__(self) -> None:
        try:
            await self._lock.acquire()
        except BaseException:
            self._release_slot()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._release_slot()

    def _release_slot(self) -> None:
        lock, users = self._table[self._aor]
        if users <= 1:
            del self._table[self._aor]
        else:
            self._table[self._aor] = (lock, users - 1)


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    """§10.3 step 7: with the same Call-ID the CSeq must be higher than the stored
    one; "If not, the update MUST be aborted and the request fails." No binding
    changes; the failure is a 500, as for any binding update that fails."""
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise _RejectError(500, "Server Internal Error (out-of-order REGISTER)")


def _safe_uri(text: str) -> Uri | None:
    try:
        return parse_uri(text)
    except RemoteProtocolError:
        return None


def _reg_id(contact: NameAddr) -> int | None:
    value = contact.params.get("reg-id")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 10 or not 1 <= int(value) <= 2**31 - 1:
        raise _RejectError(400, "Bad Request (malformed reg-id)")
    return int(value)


def _other_params(contact: NameAddr) -> str:
    """The Contact's header parameters other than expires and q, as written."""
    kept = [(n, v) for n, v in contact.params if n.lower() not in ("expires", "q")]
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in kept)


def _format_q(q: float) -> str:
    return f"{q:.3f}".rstrip("0").rstrip(".") or "0"


def _phrase(status: int) -> str:
    return REASON_PHRASES.get(status, "Error")
