"""The dnspython-backed resolver, fed recorded answers (and once a loopback DNS server)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.zone
import pytest

from sipline.core.failover import Failover, FailureKind
from sipline.core.response_route import ViaHop, response_route
from sipline.core.routing import (
    Destination,
    Query,
    RecordType,
    SrvRecord,
    Target,
    Transport,
)
from sipline.testing.fakes import FakeClock
from sipline.transport.resolver import ResolutionError, Resolver

UDP, TCP, TLS = Transport.UDP, Transport.TCP, Transport.TLS

# Recorded answers for the RFC 3263 §4.1 example domain and a few neighbours.
ZONE_TEXT = """
example.com.              300 IN NAPTR 50  50 "s" "SIPS+D2T" "" _sips._tcp.example.com.
example.com.              300 IN NAPTR 90  50 "s" "SIP+D2T"  "" _sip._tcp.example.com.
example.com.              300 IN NAPTR 100 50 "s" "SIP+D2U"  "" _sip._udp.example.com.
_sips._tcp.example.com.   300 IN SRV   0 1 5061 server1.example.com.
_sip._tcp.example.com.    300 IN SRV   0 1 5060 server1.example.com.
_sip._udp.example.com.    300 IN SRV   0 1 5060 server1.example.com.
_sip._udp.example.com.    300 IN SRV   0 3 5060 server2.example.com.
_sip._udp.example.com.    300 IN SRV   1 0 5060 server3.example.com.
server1.example.com.       60 IN A     192.0.2.1
server1.example.com.       60 IN AAAA  2001:db8::1
server2.example.com.       60 IN A     192.0.2.2
server3.example.com.       60 IN A     192.0.2.3
srvonly.example.net.      300 IN TXT   "no NAPTR here"
_sip._tcp.srvonly.example.net. 300 IN SRV 0 0 5070 pbx.example.net.
pbx.example.net.          300 IN A     198.51.100.7
plain.example.org.        120 IN A     203.0.113.1
plain.example.org.        120 IN AAAA  2001:db8::100
glue.example.org.         300 IN SRV   0 0 5060 _sip._udp.glue.example.org.
_sip._udp.glue.example.org. 300 IN SRV 0 0 5060 ua.glue.example.org.
ua.glue.example.org.      300 IN A     203.0.113.50
secure.example.org.       300 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.secure.example.org.
secure.example.org.       300 IN NAPTR 20 10 "s" "SIPS+D2T" "" _sips._tcp.secure.example.org.
_sip._udp.secure.example.org. 300 IN SRV 0 0 5060 sbc.secure.example.org.
_sips._tcp.secure.example.org. 300 IN SRV 0 0 5061 sbc.secure.example.org.
sbc.secure.example.org.   300 IN A     203.0.113.9
"""

ZONE = dns.zone.from_text(ZONE_TEXT, origin=dns.name.root, relativize=False, check_origin=False)


def first(n: int) -> int:
    return 0


class RecordedResolver(dns.asyncresolver.Resolver):
    """Answers from a zone instead of the network, the way dnspython would.

    Absent names raise NXDOMAIN, present names without the type answer empty, and
    `failures` raise as given. Every question asked is logged in `asked`.
    """

    def __init__(
        self,
        zone: dns.zone.Zone = ZONE,
        failures: Mapping[tuple[str, str], Exception] | None = None,
        glue: bool = False,
    ) -> None:
        super().__init__(configure=False)
        self.zone = zone
        self.failures = dict(failures or {})
        self.glue = glue
        self.asked: list[tuple[str, str]] = []

    async def resolve(
        self, qname: dns.name.Name | str, rdtype: Any = "A", *args: Any, **kwargs: Any
    ) -> dns.resolver.Answer:
        name = dns.name.from_text(str(qname))
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        key = (name.to_text(), dns.rdatatype.to_text(rdtype))
        self.asked.append(key)
        await asyncio.sleep(0)
        if key in self.failures:
            raise self.failures[key]
        node = self.zone.get_node(name)
        if node is None:
            raise dns.resolver.NXDOMAIN(qnames=[name], responses={})
        query = dns.message.make_query(name, rdtype)
        response = dns.message.make_response(query)
        assert isinstance(response, dns.message.QueryMessage)
        rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if rdataset is not None:
            _add(response, response.answer, name, rdataset)
            if self.glue and rdtype == dns.rdatatype.SRV:
                for rd in rdataset:
                    glue = self.zone.get_rdataset(rd.target, dns.rdatatype.A)
                    if glue is not None:
                        _add(response, response.additional, rd.target, glue)
                # Addresses for names that are not SRV targets must not be believed.
                junk = dns.rdataset.from_text("IN", "A", 300, "6.6.6.6")
                _add(response, response.additional, dns.name.from_text("plain.example.org"), junk)
        return dns.resolver.Answer(name, rdtype, dns.rdataclass.IN, response)


def _add(
    message: dns.message.Message,
    section: list[dns.rrset.RRset],
    name: dns.name.Name,
    rdataset: dns.rdataset.Rdataset,
) -> None:
    # find_rrset keeps the message's index in step, which Answer relies on.
    rrset = message.find_rrset(section, name, rdataset.rdclass, rdataset.rdtype, create=True)
    rrset.update(rdataset)


def make(dns_resolver: RecordedResolver, **kw: Any) -> Resolver:
    kw.setdefault("choose", first)
    return Resolver(dns_resolver=dns_resolver, **kw)


async def test_naptr_srv_a_with_priorities_and_weights() -> None:
    recorded = RecordedResolver()
    targets = await make(recorded).resolve(Destination("example.com"))
    name = "example.com"
    assert targets == [
        Target(TLS, "192.0.2.1", 5061, name),
        Target(TLS, "2001:db8::1", 5061, name),
        Target(TCP, "192.0.2.1", 5060, name),
        Target(TCP, "2001:db8::1", 5060, name),
        Target(UDP, "192.0.2.1", 5060, name),
        Target(UDP, "2001:db8::1", 5060, name),
        Target(UDP, "192.0.2.2", 5060, name),
        Target(UDP, "192.0.2.3", 5060, name),
    ]
    assert recorded.asked[0] == ("example.com.", "NAPTR")


async def test_srv_weights_use_the_injected_choice() -> None:
    # Weights 1 and 3 at priority 0: a draw of 2 passes server1's running sum (1).
    targets = await make(RecordedResolver(), choose=lambda n: min(2, n - 1)).resolve(
        Destination("example.com", transport="udp")
    )
    assert [t.host for t in targets] == ["192.0.2.2", "192.0.2.1", "2001:db8::1", "192.0.2.3"]


async def test_sips_keeps_only_tls() -> None:
    targets = await make(RecordedResolver()).resolve(Destination("example.com", scheme="sips"))
    assert targets == [
        Target(TLS, "192.0.2.1", 5061, "example.com"),
        Target(TLS, "2001:db8::1", 5061, "example.com"),
    ]


async def test_sips_skips_a_preferred_udp_naptr() -> None:
    targets = await make(RecordedResolver()).resolve(Destination("secure.example.org", "sips"))
    assert targets == [Target(TLS, "203.0.113.9", 5061, "secure.example.org")]


async def test_explicit_transport_and_port() -> None:
    recorded = RecordedResolver()
    resolver = make(recorded)
    tcp = await resolver.resolve(Destination("example.com", transport="tcp"))
    assert tcp[0] == Target(TCP, "192.0.2.1", 5060, "example.com")
    assert ("example.com.", "NAPTR") not in recorded.asked
    ported = await resolver.resolve(Destination("plain.example.org", port=5090))
    assert ported == [
        Target(UDP, "203.0.113.1", 5090, "plain.example.org"),
        Target(UDP, "2001:db8::100", 5090, "plain.example.org"),
    ]
    assert ("plain.example.org.", "SRV") not in {(n, t) for n, t in recorded.asked}


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        (Destination("192.0.2.10"), Target(UDP, "192.0.2.10", 5060)),
        (Destination("192.0.2.10", scheme="sips"), Target(TLS, "192.0.2.10", 5061)),
        (
            Destination("2001:db8::10", port=5080, transport="tcp"),
            Target(TCP, "2001:db8::10", 5080),
        ),
        (Destination("[2001:db8::10]"), Target(UDP, "2001:db8::10", 5060)),
    ],
)
async def test_numeric_hosts_never_touch_dns(dest: Destination, expected: Target) -> None:
    recorded = RecordedResolver()
    assert await make(recorded).resolve(dest) == [expected]
    assert recorded.asked == []


async def test_srv_without_naptr() -> None:
    recorded = RecordedResolver()
    targets = await make(recorded).resolve(Destination("srvonly.example.net"))
    assert targets == [Target(TCP, "198.51.100.7", 5070, "srvonly.example.net")]
    assert recorded.asked[:4] == [
        ("srvonly.example.net.", "NAPTR"),
        ("_sips._tcp.srvonly.example.net.", "SRV"),
        ("_sip._tcp.srvonly.example.net.", "SRV"),
        ("_sip._udp.srvonly.example.net.", "SRV"),
    ]


@pytest.mark.parametrize(
    ("prefer_ipv6", "use_ipv6", "hosts"),
    [
        (False, True, ["203.0.113.1", "2001:db8::100"]),
        (True, True, ["2001:db8::100", "203.0.113.1"]),
        (False, False, ["203.0.113.1"]),
    ],
)
async def test_plain_a_aaaa(prefer_ipv6: bool, use_ipv6: bool, hosts: list[str]) -> None:
    resolver = make(RecordedResolver(), prefer_ipv6=prefer_ipv6, use_ipv6=use_ipv6)
    targets = await resolver.resolve(Destination("plain.example.org"))
    assert [t.host for t in targets] == hosts
    assert {(t.transport, t.port) for t in targets} == {(UDP, 5060)}


async def test_nxdomain_is_a_permanent_resolution_error() -> None:
    with pytest.raises(ResolutionError) as info:
        await make(RecordedResolver()).resolve(Destination("nowhere.invalid"))
    assert info.value.temporary is False
    assert info.value.errors == ()
    assert "nowhere.invalid" in str(info.value)


async def test_dns_failures_are_temporary_errors() -> None:
    failures: dict[tuple[str, str], Exception] = {
        ("plain.example.org.", "A"): dns.exception.Timeout(),
        ("plain.example.org.", "AAAA"): dns.resolver.NoNameservers(),
    }
    with pytest.raises(ResolutionError) as info:
        await make(RecordedResolver(failures=failures)).resolve(
            Destination("plain.example.org", port=5060)
        )
    assert info.value.temporary
    assert len(info.value.errors) == 2


async def test_partial_failure_still_gives_what_answered() -> None:
    # A NAPTR timeout is treated as no NAPTR; the SRV fallback still finds the server.
    failures: dict[tuple[str, str], Exception] = {
        ("srvonly.example.net.", "NAPTR"): dns.exception.Timeout(),
    }
    resolver = make(RecordedResolver(failures=failures))
    assert await resolver.resolve(Destination("srvonly.example.net")) == [
        Target(TCP, "198.51.100.7", 5070, "srvonly.example.net")
    ]


async def test_cache_honours_ttl_on_the_injected_clock() -> None:
    recorded = RecordedResolver()
    clock = FakeClock()
    resolver = make(recorded, clock=clock)
    dest = Destination("plain.example.org", port=5060)
    await resolver.resolve(dest)
    assert len(recorded.asked) == 2
    clock.advance(119)
    await resolver.resolve(dest)
    assert len(recorded.asked) == 2  # both answers still fresh (TTL 120)
    clock.advance(1)
    await resolver.resolve(dest)
    assert len(recorded.asked) == 4
    resolver.clear_cache()
    await resolver.resolve(dest)
    assert len(recorded.asked) == 6


async def test_cache_is_bounded_and_skips_failures() -> None:
    failures: dict[tuple[str, str], Exception] = {
        ("plain.example.org.", "AAAA"): dns.exception.Timeout()
    }
    recorded = RecordedResolver(failures=failures)
    resolver = make(recorded, cache_size=1, clock=FakeClock())
    a = Query("plain.example.org", RecordType.A)
    aaaa = Query("plain.example.org", RecordType.AAAA)
    errors: list[Exception] = []
    assert await resolver.lookup(a) == ("203.0.113.1",)
    assert await resolver.lookup(aaaa, errors) == ()
    assert await resolver.lookup(aaaa, errors) == ()
    assert len(errors) == 2
    await resolver.lookup(Query("server1.example.com", RecordType.A))  # evicts plain A
    await resolver.lookup(a)
    assert recorded.asked.count(("plain.example.org.", "A")) == 2


async def test_srv_glue_saves_address_queries_but_only_for_srv_targets() -> None:
    recorded = RecordedResolver(glue=True)
    resolver = make(recorded, use_ipv6=False)
    targets = await resolver.resolve(Destination("example.com", transport="udp"))
    assert ("server2.example.com.", "A") not in recorded.asked
    assert [t.host for t in targets] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert await resolver.lookup(Query("plain.example.org", RecordType.A)) == ("203.0.113.1",)


async def test_failover_order_over_resolved_targets() -> None:
    targets = await make(RecordedResolver()).resolve(Destination("example.com"))
    failover = Failover(targets)
    kinds = (FailureKind.TRANSPORT_ERROR, FailureKind.TIMEOUT, FailureKind.SERVICE_UNAVAILABLE)
    seen = [failover.current, *(failover.fail(kind) for kind in kinds)]
    assert seen == targets[:4]
    assert [t.transport for t in targets[:4]] == [TLS, TLS, TCP, TCP]


async def test_response_routes() -> None:
    recorded = RecordedResolver()
    resolver = make(recorded)
    udp = response_route(ViaHop("UDP", "ua.example.com", 5060, received="192.0.2.40", rport=1234))
    assert await resolver.resolve_response(udp) == [Target(UDP, "192.0.2.40", 1234)]
    tcp = response_route(ViaHop("TCP", "plain.example.org", 5070, received="192.0.2.41"))
    assert await resolver.resolve_response(tcp) == [
        Target(TCP, "192.0.2.41", 5070),
        Target(TCP, "203.0.113.1", 5070, "plain.example.org"),
        Target(TCP, "2001:db8::100", 5070, "plain.example.org"),
    ]
    gone = response_route(ViaHop("TCP", "nowhere.invalid", 5070, received="192.0.2.41"))
    assert await resolver.resolve_response(gone) == [Target(TCP, "192.0.2.41", 5070)]
    by_srv = response_route(ViaHop("UDP", "glue.example.org"))
    assert await resolver.resolve_response(by_srv) == [
        Target(UDP, "203.0.113.50", 5060, "glue.example.org")
    ]
    with pytest.raises(ResolutionError):
        await resolver.resolve_response(response_route(ViaHop("UDP", "nowhere.invalid")))


def test_builds_its_own_dnspython_resolver() -> None:
    resolver = Resolver(nameservers=["192.0.2.53"], port=5353, timeout_s=0.5, configure=False)
    inner = resolver._dns
    assert inner.nameservers == ["192.0.2.53"]
    assert inner.port == 5353
    assert inner.lifetime == 0.5


# -- end to end, against a DNS server on loopback --------------------------------------


class _CannedDns(asyncio.DatagramProtocol):
    def __init__(self, zone: dns.zone.Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None
        self.questions: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        question = query.question[0]
        self.questions.append(f"{question.name} {dns.rdatatype.to_text(question.rdtype)}")
        node = self.zone.get_node(question.name)
        if node is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            rdataset = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
            if rdataset is not None:
                _add(response, response.answer, question.name, rdataset)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


async def test_end_to_end_against_loopback_dns_server() -> None:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: _CannedDns(ZONE), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        resolver = Resolver(
            nameservers=["127.0.0.1"], port=port, timeout_s=2.0, configure=False, choose=first
        )
        async with asyncio.timeout(10):
            targets = await resolver.resolve(Destination("example.com", scheme="sips"))
            assert targets == [
                Target(TLS, "192.0.2.1", 5061, "example.com"),
                Target(TLS, "2001:db8::1", 5061, "example.com"),
            ]
            with pytest.raises(ResolutionError) as info:
                await resolver.resolve(Destination("nowhere.invalid"))
            assert not info.value.temporary
        assert "example.com. NAPTR" in server.questions
    finally:
        transport.close()


async def test_unanswered_dns_is_a_temporary_error() -> None:
    # A server that never answers: bounded by the resolver's timeout, not by the test's.
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        resolver = Resolver(
            nameservers=["127.0.0.1"], port=port, timeout_s=0.2, configure=False, choose=first
        )
        async with asyncio.timeout(5):
            with pytest.raises(ResolutionError) as info:
                await resolver.resolve(Destination("plain.example.org", port=5060))
        assert info.value.temporary
    finally:
        transport.close()


def test_srv_records_convert_from_dnspython() -> None:
    rrset = ZONE.get_rrset("_sip._udp.example.com.", "SRV")
    assert rrset is not None
    assert SrvRecord(1, 0, 5060, "server3.example.com.") in {
        SrvRecord(rd.priority, rd.weight, rd.port, rd.target.to_text()) for rd in rrset
    }
