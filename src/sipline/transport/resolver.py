"""RFC 3263 server location over DNS, with dnspython's asyncio resolver.

The decisions live in `sipline.core.routing.Locator`; this module only answers its
questions. Each batch of questions runs concurrently, answers are cached for their
TTL (on an injected clock), and DNS failures are collected: the walk carries on as
if the records were absent, and `ResolutionError` says why when no target is left.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.rrset

from sipline.core.clock import Clock
from sipline.core.response_route import ResponseRoute
from sipline.core.routing import (
    DEFAULT_TRANSPORTS,
    Destination,
    Locator,
    NaptrRecord,
    Query,
    RecordType,
    SrvRecord,
    Target,
    Transport,
)
from sipline.transport.hosts import DEFAULT_PATH as DEFAULT_HOSTS
from sipline.transport.hosts import HostsFile

__all__ = ["ResolutionError", "Resolver"]

Records = tuple[NaptrRecord, ...] | tuple[SrvRecord, ...] | tuple[str, ...]

# The walk is NAPTR -> SRV -> A/AAAA; anything deeper is a bug, not a reason to spin.
_MAX_ROUNDS = 6


class ResolutionError(Exception):
    """No target could be found for a destination.

    `errors` holds the DNS failures met on the way (timeouts, SERVFAIL); when it is
    empty the records simply do not exist, and `temporary` is False.
    """

    def __init__(
        self, reason: str, destination: Destination, errors: Sequence[Exception] = ()
    ) -> None:
        super().__init__(f"{reason}: {destination.maddr or destination.host}")
        self.reason = reason
        self.destination = destination
        self.errors = tuple(errors)

    @property
    def temporary(self) -> bool:
        return bool(self.errors)


class _SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


@dataclass(slots=True)
class _Entry:
    expires: float
    records: Records


class Resolver:
    """Turns a SIP destination into the ordered targets of RFC 3263.

    `nameservers`/`port`/`configure` set up the dnspython resolver (pass `dns_resolver`
    to bring one of your own); `timeout_s` bounds each DNS question. IP literals never
    touch DNS, nor do names in the hosts file (`hosts_file`, /etc/hosts; None:
    DNS only), which are answered from it as getaddrinfo would. Positive answers are
    cached until their TTL runs out on `clock`.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[str] | None = None,
        port: int = 53,
        timeout_s: float = 2.0,
        configure: bool = True,
        dns_resolver: dns.asyncresolver.Resolver | None = None,
        transports: Sequence[Transport] = DEFAULT_TRANSPORTS,
        prefer_ipv6: bool = False,
        use_ipv6: bool = True,
        clock: Clock | None = None,
        choose: Callable[[int], int] | None = None,
        cache_size: int = 512,
        hosts_file: Path | str | None = DEFAULT_HOSTS,
    ) -> None:
        if dns_resolver is None:
            dns_resolver = dns.asyncresolver.Resolver(configure=configure)
            if nameservers is not None:
                dns_resolver.nameservers = list(nameservers)
            dns_resolver.port = port
            dns_resolver.timeout = timeout_s
            dns_resolver.lifetime = timeout_s
        self._dns = dns_resolver
        self._transports = tuple(transports)
        versions = (6, 4) if prefer_ipv6 else (4, 6)
        self._ip_versions = versions if use_ipv6 else (4,)
        self._clock: Clock = clock or _SystemClock()
        self._choose = choose or secrets.randbelow
        self._cache_size = cache_size
        self._cache: dict[Query, _Entry] = {}
        self._hosts = HostsFile(hosts_file) if hosts_file is not None else None

    async def resolve(self, destination: Destination) -> list[Target]:
        """The ordered failover list for `destination`; raises `ResolutionError` if empty."""
        locator = Locator(
            destination,
            choose=self._choose,
            transports=self._transports,
            ip_versions=self._ip_versions,
        )
        errors: list[Exception] = []
        for _ in range(_MAX_ROUNDS):
            queries = locator.pending()
            if not queries:
                break
            answers = await asyncio.gather(*(self.lookup(q, errors) for q in queries))
            for query, records in zip(queries, answers, strict=True):
                _feed(locator, query, records)
        else:
            raise ResolutionError("DNS walk did not settle", destination, errors)
        targets = locator.targets()
        if not targets:
            reason = "DNS lookups failed" if errors else "no DNS records"
            raise ResolutionError(reason, destination, errors)
        return targets

    async def resolve_response(self, route: ResponseRoute) -> list[Target]:
        """Targets for a response when no open connection can carry it (RFC 3263 §5)."""
        targets: list[Target] = []
        failure: ResolutionError | None = None
        for destination in (route.destination, route.fallback):
            if destination is None:
                continue
            try:
                targets += await self.resolve(destination)
            except ResolutionError as exc:
                failure = failure or exc
        if not targets:
            raise failure or ResolutionError("no targets", route.destination)
        return list(dict.fromkeys(targets))

    async def lookup(self, query: Query, errors: list[Exception] | None = None) -> Records:
        """One DNS question through the cache; absent records and failures give ().

        Failures are appended to `errors` when given, and never cached.
        """
        if self._hosts is not None and _owner(query.name) in self._hosts:
            # The hosts file answers for its names alone (RFC 3263 §4.2: A/AAAA when
            # there is no NAPTR or SRV), as getaddrinfo with "files dns" does.
            if query.rdtype in (RecordType.A, RecordType.AAAA):
                found = self._hosts.addresses(query.name, 4 if query.rdtype is RecordType.A else 6)
                return found or ()
            return ()
        now = self._clock.monotonic()
        entry = self._cache.get(query)
        if entry is not None:
            if entry.expires > now:
                return entry.records
            del self._cache[query]
        try:
            answer = await self._dns.resolve(
                dns.name.from_text(query.name),
                query.rdtype.value,
                search=False,
                raise_on_no_answer=False,
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return ()
        except dns.exception.DNSException as exc:
            if errors is not None:
                errors.append(exc)
            return ()
        if answer.rrset is None:
            return ()
        records = _convert(query.rdtype, answer.rrset)
        self._store(query, records, answer.rrset.ttl, now)
        if query.rdtype is RecordType.SRV:
            self._store_glue(records, answer.response.additional, now)
        return records

    def clear_cache(self) -> None:
        self._cache.clear()

    def _store(self, query: Query, records: Records, ttl: int, now: float) -> None:
        if ttl <= 0 or self._cache_size <= 0:
            return
        self._cache.pop(query, None)
        while len(self._cache) >= self._cache_size:
            del self._cache[next(iter(self._cache))]  # oldest insertion first
        self._cache[query] = _Entry(now + ttl, records)

    def _store_glue(self, records: Records, additional: list[dns.rrset.RRset], now: float) -> None:
        # Addresses in the additional section save a round trip (RFC 2782), but only
        # for the SRV targets themselves: anything else there is not ours to believe.
        targets = {_norm(r.target) for r in records if isinstance(r, SrvRecord)}
        for rrset in additional:
            name = _norm(rrset.name.to_text())
            if name not in targets or rrset.rdtype not in (
                dns.rdatatype.A,
                dns.rdatatype.AAAA,
            ):
                continue
            rdtype = RecordType(dns.rdatatype.to_text(rrset.rdtype))
            self._store(Query(name, rdtype), _convert(rdtype, rrset), rrset.ttl, now)


def _owner(name: str) -> str:
    """The host an SRV question is about: `_sip._udp.host` -> `host`."""
    labels = name.split(".")
    while len(labels) > 1 and labels[0].startswith("_"):
        labels.pop(0)
    return ".".join(labels)


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def _convert(rdtype: RecordType, rrset: dns.rrset.RRset) -> Records:
    if rdtype is RecordType.NAPTR:
        return tuple(
            NaptrRecord(
                order=rd.order,
                preference=rd.preference,
                flags=rd.flags.decode("ascii", "replace"),
                service=rd.service.decode("ascii", "replace"),
                replacement=rd.replacement.to_text(),
            )
            for rd in rrset
        )
    if rdtype is RecordType.SRV:
        return tuple(
            SrvRecord(rd.priority, rd.weight, rd.port, rd.target.to_text()) for rd in rrset
        )
    return tuple(rd.address for rd in rrset)


def _feed(locator: Locator, query: Query, records: Records) -> None:
    if query.rdtype is RecordType.NAPTR:
        locator.feed_naptr(query.name, [r for r in records if isinstance(r, NaptrRecord)])
    elif query.rdtype is RecordType.SRV:
        locator.feed_srv(query.name, [r for r in records if isinstance(r, SrvRecord)])
    else:
        locator.feed_addresses(query.name, query.rdtype, [r for r in records if isinstance(r, str)])
