"""Locating SIP servers (RFC 3263) over already-resolved DNS records.

Sans-I/O: a `Locator` walks the RFC 3263 §4 decision tree for one destination and
says which DNS records it still needs (`pending()`); the caller looks them up and
hands them back (`feed_*`), and once nothing is pending `targets()` is the ordered
failover list. Randomness for the RFC 2782 weighted choice comes in as `choose`.

The §4.3 failover cursor over that list is `sipline.core.failover`; where a
response goes (RFC 3261 §18.2.2) is `sipline.core.response_route`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from sipline.core.clock import Entropy
from sipline.core.errors import LocalProtocolError

__all__ = [
    "DEFAULT_TRANSPORTS",
    "Destination",
    "Locator",
    "NaptrRecord",
    "Query",
    "RecordType",
    "SrvRecord",
    "Target",
    "Transport",
    "choose_from_entropy",
    "default_port",
    "is_ip_literal",
    "order_naptr",
    "order_srv",
    "unbracket",
]


class Transport(StrEnum):
    """Transport names as they appear in Via (RFC 3261 §20.42, RFC 7118)."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"
    SCTP = "SCTP"
    WS = "WS"
    WSS = "WSS"

    @property
    def reliable(self) -> bool:
        return self is not Transport.UDP

    @property
    def secure(self) -> bool:
        return self in (Transport.TLS, Transport.WSS)


class RecordType(StrEnum):
    NAPTR = "NAPTR"
    SRV = "SRV"
    A = "A"
    AAAA = "AAAA"


# Client preference when the server offers a choice (no NAPTR, RFC 3263 §4.1): secure first.
DEFAULT_TRANSPORTS: tuple[Transport, ...] = (Transport.TLS, Transport.TCP, Transport.UDP)

# RFC 3263 §4.1 NAPTR services; RFC 4168 (SCTP) and RFC 7118 (WebSocket) add the rest.
# SIPS+D2U is not defined: TLS needs a reliable transport.
_NAPTR_SERVICES: dict[str, Transport] = {
    "SIP+D2U": Transport.UDP,
    "SIP+D2T": Transport.TCP,
    "SIPS+D2T": Transport.TLS,
    "SIP+D2S": Transport.SCTP,
    "SIP+D2W": Transport.WS,
    "SIPS+D2W": Transport.WSS,
}

# RFC 3263 §4.2: "_sips" for TLS whatever the URI scheme. WebSocket has no SRV (RFC 7118).
_SRV_PREFIX: dict[Transport, str] = {
    Transport.TLS: "_sips._tcp.",
    Transport.TCP: "_sip._tcp.",
    Transport.UDP: "_sip._udp.",
    Transport.SCTP: "_sip._sctp.",
}

_DEFAULT_PORTS: dict[Transport, int] = {
    Transport.UDP: 5060,
    Transport.TCP: 5060,
    Transport.SCTP: 5060,
    Transport.TLS: 5061,
    Transport.WS: 80,
    Transport.WSS: 443,
}


def default_port(transport: Transport) -> int:
    """RFC 3261 §19.1.2 (5060, 5061 for TLS); RFC 7118 §5 for WebSocket."""
    return _DEFAULT_PORTS[transport]


@lru_cache(maxsize=4096)  # asked for every hop of every request: the same few hosts
def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address (brackets around IPv6 allowed)."""
    try:
        ipaddress.ip_address(unbracket(host))
    except ValueError:
        return False
    return True


def unbracket(host: str) -> str:
    """An IPv6 reference without its brackets (any other host unchanged)."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _norm_name(name: str) -> str:
    # DNS names compare case-insensitively; answers carry the root dot, URIs do not.
    return name.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send a request: an IP literal (IPv6 unbracketed) and port.

    `server_name` is the URI host, the identity TLS checks (RFC 5922 §4), or None when
    the URI named an IP address.
    """

    transport: Transport
    host: str
    port: int
    server_name: str | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    """The parts of a SIP/SIPS URI that RFC 3263 looks at."""

    host: str
    scheme: str = "sip"
    port: int | None = None
    transport: str | None = None
    maddr: str | None = None


@dataclass(frozen=True, slots=True)
class NaptrRecord:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Query:
    """A DNS question the locator needs answered. `name` has no trailing dot."""

    name: str
    rdtype: RecordType


def choose_from_entropy(entropy: Entropy) -> Callable[[int], int]:
    """Adapt an `Entropy` into `choose(n) -> int in [0, n)`, without modulo bias."""

    def choose(n: int) -> int:
        if n <= 0:
            raise LocalProtocolError("choose() needs a positive bound")
        nbytes = (n.bit_length() + 7) // 8 + 1
        span = 1 << (8 * nbytes)
        limit = span - span % n
        while True:
            value = int.from_bytes(entropy.random_bytes(nbytes), "big")
            if value < limit:
                return value % n

    return choose


def order_srv(records: Iterable[SrvRecord], choose: Callable[[int], int]) -> list[SrvRecord]:
    """Order SRV records for trying, RFC 2782 "Usage rules".

    Lowest priority first; inside a priority, repeatedly pick at random with
    probability proportional to weight (weight-0 records first in the running sum,
    so they are picked only when no weighted one is left or the draw lands on 0).
    Records whose target is "." (service decidedly not available) are dropped.
    """
    usable = [r for r in records if _norm_name(r.target)]
    out: list[SrvRecord] = []
    for priority in sorted({r.priority for r in usable}):
        group = [r for r in usable if r.priority == priority]
        while group:
            group.sort(key=lambda r: r.weight != 0)  # stable: zeros to the front
            total = sum(r.weight for r in group)
            draw = choose(total + 1)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= draw:
                    out.append(group.pop(index))
                    break
    return out


def order_naptr(
    records: Iterable[NaptrRecord],
    *,
    secure: bool,
    transports: Sequence[Transport] = DEFAULT_TRANSPORTS,
) -> list[tuple[Transport, str]]:
    """Usable NAPTR records as (transport, SRV name), best first (RFC 3263 §4.1).

    Only terminal "s" records with a SIP service we support are kept; a SIPS URI keeps
    only secure services, while a SIP URI keeps SIPS ones too (when TLS is supported).
    """
    kept: list[tuple[int, int, Transport, str]] = []
    for record in records:
        transport = _NAPTR_SERVICES.get(record.service.upper())
        if transport is None or transport not in transports:
            continue
        if record.flags.lower() != "s" or (secure and not transport.secure):
            continue
        replacement = _norm_name(record.replacement)
        if replacement:
            kept.append((record.order, record.preference, transport, replacement))
    kept.sort(key=lambda item: (item[0], item[1]))
    return [(transport, name) for _, _, transport, name in kept]


def _explicit_transport(param: str, *, secure: bool) -> Transport:
    try:
        transport = Transport(param.upper())
    except ValueError:
        raise LocalProtocolError(f"unknown transport {param!r}") from None
    if secure:
        # RFC 3261 §26.2.2: a SIPS URI means TLS on every hop; transport=tcp is TLS over
        # TCP (and ws is WSS). UDP and SCTP cannot carry TLS here.
        upgraded = {Transport.TCP: Transport.TLS, Transport.WS: Transport.WSS}
        transport = upgraded.get(transport, transport)
        if not transport.secure:
            raise LocalProtocolError(f"a sips URI cannot use transport={param}")
    return transport


@dataclass(slots=True)
class _Walk:
    missing: list[Query] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


class Locator:
    """RFC 3263 §4 server location for one destination, fed DNS answers from outside.

    Drive it with::

        while queries := locator.pending():
            for q in queries: locator.feed_*(q.name, ...)  # empty sequence if none
        targets = locator.targets()

    The queries of one `pending()` batch are independent and can run concurrently.
    Answers may also be fed ahead of time (e.g. A records from an SRV response's
    additional section).
    """

    def __init__(
        self,
        destination: Destination,
        *,
        choose: Callable[[int], int],
        transports: Sequence[Transport] = DEFAULT_TRANSPORTS,
        ip_versions: Sequence[int] = (4, 6),
    ) -> None:
        scheme = destination.scheme.lower()
        if scheme not in ("sip", "sips"):
            raise LocalProtocolError(f"cannot locate a {scheme!r} URI")
        if not transports:
            raise LocalProtocolError("no transports to choose from")
        self._secure = scheme == "sips"
        # RFC 3263 §4: maddr, when present, is the TARGET instead of the host.
        self._target = unbracket(destination.maddr or destination.host)
        self._numeric = is_ip_literal(self._target)
        if not self._numeric:
            self._target = _norm_name(self._target)
        self._port = destination.port
        self._transports = tuple(transports)
        self._explicit = (
            _explicit_transport(destination.transport, secure=self._secure)
            if destination.transport
            else None
        )
        if self._explicit is not None and self._explicit not in self._transports:
            raise LocalProtocolError(f"transport {self._explicit} is not supported")
        self._default = self._default_transport()
        host = unbracket(destination.host)
        self._server_name = None if is_ip_literal(host) else _norm_name(host)
        address_types = {4: RecordType.A, 6: RecordType.AAAA}
        self._address_types = tuple(address_types[v] for v in ip_versions)
        self._choose = choose
        self._naptr: dict[str, tuple[NaptrRecord, ...]] = {}
        self._srv: dict[str, tuple[SrvRecord, ...]] = {}
        self._srv_ordered: dict[str, list[SrvRecord]] = {}
        self._addresses: dict[Query, tuple[str, ...]] = {}

    # -- feeding -------------------------------------------------------------------

    def feed_naptr(self, name: str, records: Iterable[NaptrRecord]) -> None:
        self._naptr[_norm_name(name)] = tuple(records)

    def feed_srv(self, name: str, records: Iterable[SrvRecord]) -> None:
        key = _norm_name(name)
        self._srv[key] = tuple(records)
        self._srv_ordered.pop(key, None)

    def feed_addresses(self, name: str, rdtype: RecordType, addresses: Iterable[str]) -> None:
        if rdtype not in (RecordType.A, RecordType.AAAA):
            raise LocalProtocolError(f"{rdtype} records are not addresses")
        self._addresses[Query(_norm_name(name), rdtype)] = tuple(addresses)

    # -- results -------------------------------------------------------------------

    def pending(self) -> tuple[Query, ...]:
        """The DNS questions needed before the walk can go further; empty when done."""
        return tuple(dict.fromkeys(self._walk().missing))

    @property
    def done(self) -> bool:
        return not self._walk().missing

    def targets(self) -> list[Target]:
        """The ordered failover list (RFC 3263 §4.3). Empty means nowhere to send."""
        walk = self._walk()
        if walk.missing:
            raise LocalProtocolError("targets() called while DNS answers are pending")
        return walk.targets

    # -- the §4 walk ---------------------------------------------------------------

    def _walk(self) -> _Walk:
        walk = _Walk()
        default_transport = self._default
        if self._numeric:
            # RFC 3263 §4.1/§4.2: an IP address is used as is, UDP (sip) or TLS (sips).
            transport = self._explicit or default_transport
            port = self._port or default_port(transport)
            walk.targets.append(Target(transport, self._target, port, self._server_name))
            return walk
        if self._port is not None:
            # RFC 3263 §4.2: a port in the URI skips NAPTR and SRV; A/AAAA only.
            transport = self._explicit or default_transport
            self._hosts(walk, [(transport, self._target, self._port)])
            return walk
        if self._explicit is not None:
            # RFC 3263 §4.2: transport given, port not: SRV for that transport only.
            prefix = _SRV_PREFIX.get(self._explicit)
            candidates = [(self._explicit, prefix + self._target)] if prefix else []
            self._srv_then_hosts(walk, candidates, self._explicit)
            return walk
        naptr = self._naptr.get(self._target)
        if naptr is None:
            walk.missing.append(Query(self._target, RecordType.NAPTR))
            return walk
        chosen = order_naptr(naptr, secure=self._secure, transports=self._transports)
        if chosen:
            fallback = chosen[0][0]
        else:
            # RFC 3263 §4.1: no (usable) NAPTR: ask SRV for each transport we support,
            # in our order of preference; A/AAAA fallback is TCP/TLS for sips, UDP for sip.
            chosen = [
                (t, _SRV_PREFIX[t] + self._target)
                for t in self._transports
                if t in _SRV_PREFIX and (t.secure or not self._secure)
            ]
            fallback = default_transport
        self._srv_then_hosts(walk, chosen, fallback)
        return walk

    def _default_transport(self) -> Transport:
        # RFC 3263 §4.1: UDP for sip, TLS over TCP for sips; else our best usable one.
        preferred = Transport.TLS if self._secure else Transport.UDP
        if preferred in self._transports:
            return preferred
        for transport in self._transports:
            if transport.secure or not self._secure:
                return transport
        raise LocalProtocolError("no secure transport to reach a sips URI")

    def _srv_then_hosts(
        self, walk: _Walk, candidates: list[tuple[Transport, str]], fallback: Transport
    ) -> None:
        answers: list[tuple[Transport, str, tuple[SrvRecord, ...]]] = []
        for transport, name in candidates:
            records = self._srv.get(name)
            if records is None:
                walk.missing.append(Query(name, RecordType.SRV))
            else:
                answers.append((transport, name, records))
        if walk.missing:
            return
        if not any(records for _, _, records in answers):
            # RFC 3263 §4.2: no SRV records: A/AAAA of the target at the default port.
            self._hosts(walk, [(fallback, self._target, default_port(fallback))])
            return
        # The first transport with SRV records is the one RFC 3263 picks; the others
        # follow it so that failover (§4.3) can still reach the server another way.
        hosts: list[tuple[Transport, str, int]] = []
        for transport, name, _ in answers:
            if name not in self._srv_ordered:
                self._srv_ordered[name] = order_srv(self._srv[name], self._choose)
            hosts.extend((transport, r.target, r.port) for r in self._srv_ordered[name])
        self._hosts(walk, hosts)

    def _hosts(self, walk: _Walk, hosts: list[tuple[Transport, str, int]]) -> None:
        seen: set[tuple[Transport, str, int]] = set()
        for transport, host, port in hosts:
            name = _norm_name(host)
            if is_ip_literal(name):
                addresses: list[str] = [unbracket(name)]
            else:
                addresses = []
                for rdtype in self._address_types:
                    query = Query(name, rdtype)
                    found = self._addresses.get(query)
                    if found is None:
                        walk.missing.append(query)
                    else:
                        addresses.extend(found)
            for address in addresses:
                key = (transport, address, port)
                if key not in seen:
                    seen.add(key)
                    walk.targets.append(Target(transport, address, port, self._server_name))
        if walk.missing:
            walk.targets.clear()
