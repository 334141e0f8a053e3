"""RFC 3263 target choice over canned records: no DNS, no event loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.core.errors import LocalProtocolError
from sipline.core.failover import Failover, FailureKind, failure_from_status
from sipline.core.response_route import ViaHop, response_route
from sipline.core.routing import (
    Destination,
    Locator,
    NaptrRecord,
    Query,
    RecordType,
    SrvRecord,
    Target,
    Transport,
    choose_from_entropy,
    default_port,
    is_ip_literal,
    order_naptr,
    order_srv,
)
from sipline.testing.fakes import SeededEntropy

NAPTR, SRV, A, AAAA = RecordType.NAPTR, RecordType.SRV, RecordType.A, RecordType.AAAA
UDP, TCP, TLS = Transport.UDP, Transport.TCP, Transport.TLS

Zone = Mapping[tuple[str, RecordType], Sequence[object]]


def first(n: int) -> int:
    """A `choose` that always draws 0: the first record of each weight round."""
    return 0


def scripted(*draws: int) -> Callable[[int], int]:
    it: Iterator[int] = iter(draws)

    def choose(n: int) -> int:
        value = next(it)
        assert 0 <= value < n
        return value

    return choose


def run(locator: Locator, zone: Zone) -> tuple[list[Target], list[list[Query]]]:
    """Answer the locator from `zone` (absent keys: no records); return targets and batches."""
    batches: list[list[Query]] = []
    while queries := locator.pending():
        assert len(batches) < 5, batches
        batches.append(list(queries))
        for q in queries:
            records = zone.get((q.name, q.rdtype), ())
            if q.rdtype is NAPTR:
                locator.feed_naptr(q.name, [r for r in records if isinstance(r, NaptrRecord)])
            elif q.rdtype is SRV:
                locator.feed_srv(q.name, [r for r in records if isinstance(r, SrvRecord)])
            else:
                locator.feed_addresses(q.name, q.rdtype, [r for r in records if isinstance(r, str)])
    assert locator.done
    return locator.targets(), batches


def locate(dest: Destination, zone: Zone, **kw: object) -> list[Target]:
    choose = kw.pop("choose", first)
    assert callable(choose)
    return run(Locator(dest, choose=choose, **kw), zone)[0]  # type: ignore[arg-type]


# The RFC 3263 §4.1 example domain, with an extra low-priority UDP server.
EXAMPLE: Zone = {
    ("example.com", NAPTR): [
        NaptrRecord(50, 50, "s", "SIPS+D2T", "_sips._tcp.example.com."),
        NaptrRecord(90, 50, "s", "SIP+D2T", "_sip._tcp.example.com."),
        NaptrRecord(100, 50, "s", "SIP+D2U", "_sip._udp.example.com."),
    ],
    ("_sips._tcp.example.com", SRV): [SrvRecord(0, 1, 5061, "server1.example.com.")],
    ("_sip._tcp.example.com", SRV): [SrvRecord(0, 1, 5060, "server1.example.com.")],
    ("_sip._udp.example.com", SRV): [
        SrvRecord(0, 1, 5060, "server1.example.com."),
        SrvRecord(1, 0, 5062, "server2.example.com."),
    ],
    ("server1.example.com", A): ["192.0.2.1"],
    ("server1.example.com", AAAA): ["2001:db8::1"],
    ("server2.example.com", A): ["192.0.2.2"],
    ("example.com", A): ["192.0.2.9"],
}


# -- helpers --------------------------------------------------------------------------


def test_default_ports_and_ip_literals() -> None:
    assert [default_port(t) for t in (UDP, TCP, TLS)] == [5060, 5060, 5061]
    assert default_port(Transport.WSS) == 443
    assert is_ip_literal("192.0.2.1")
    assert is_ip_literal("2001:db8::1")
    assert is_ip_literal("[2001:db8::1]")
    assert not is_ip_literal("example.com")
    assert not is_ip_literal("192.0.2.1.example.com")
    assert UDP.reliable is False
    assert TLS.reliable
    assert TLS.secure
    assert not TCP.secure


# -- §4.1 / §4.2 without DNS ----------------------------------------------------------


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        (Destination("192.0.2.1"), Target(UDP, "192.0.2.1", 5060)),
        (Destination("192.0.2.1", scheme="sips"), Target(TLS, "192.0.2.1", 5061)),
        (Destination("192.0.2.1", scheme="SIPS", port=5071), Target(TLS, "192.0.2.1", 5071)),
        (Destination("192.0.2.1", transport="tcp"), Target(TCP, "192.0.2.1", 5060)),
        (Destination("192.0.2.1", transport="TLS"), Target(TLS, "192.0.2.1", 5061)),
        (Destination("192.0.2.1", scheme="sips", transport="tcp"), Target(TLS, "192.0.2.1", 5061)),
        (Destination("2001:db8::1", port=5070), Target(UDP, "2001:db8::1", 5070)),
        (Destination("[2001:db8::1]"), Target(UDP, "2001:db8::1", 5060)),
        (Destination("2001:db8::1", scheme="sips"), Target(TLS, "2001:db8::1", 5061)),
    ],
)
def test_ip_literal_needs_no_dns(dest: Destination, expected: Target) -> None:
    locator = Locator(dest, choose=first)
    assert locator.pending() == ()
    assert locator.targets() == [expected]


def test_maddr_replaces_the_host_but_not_the_tls_name() -> None:
    dest = Destination("example.com", scheme="sips", maddr="192.0.2.7")
    assert locate(dest, {}) == [Target(TLS, "192.0.2.7", 5061, "example.com")]


def test_explicit_port_skips_naptr_and_srv() -> None:
    targets, batches = run(Locator(Destination("example.com", port=5080), choose=first), EXAMPLE)
    assert batches == [[Query("example.com", A), Query("example.com", AAAA)]]
    assert targets == [Target(UDP, "192.0.2.9", 5080, "example.com")]


def test_explicit_port_with_sips_means_tls() -> None:
    dest = Destination("example.com", scheme="sips", port=5081)
    assert locate(dest, EXAMPLE) == [Target(TLS, "192.0.2.9", 5081, "example.com")]


def test_explicit_transport_asks_srv_for_that_transport_only() -> None:
    targets, batches = run(
        Locator(Destination("example.com", transport="tcp"), choose=first), EXAMPLE
    )
    assert batches[0] == [Query("_sip._tcp.example.com", SRV)]
    assert targets == [
        Target(TCP, "192.0.2.1", 5060, "example.com"),
        Target(TCP, "2001:db8::1", 5060, "example.com"),
    ]


def test_tls_transport_uses_sips_service_even_for_sip_uri() -> None:
    targets, batches = run(
        Locator(Destination("example.com", transport="tls"), choose=first), EXAMPLE
    )
    assert batches[0] == [Query("_sips._tcp.example.com", SRV)]
    assert targets[0] == Target(TLS, "192.0.2.1", 5061, "example.com")


def test_explicit_transport_without_srv_falls_back_to_a_at_default_port() -> None:
    zone: Zone = {("example.net", A): ["198.51.100.1"]}
    dest = Destination("example.net", scheme="sips", transport="tcp")
    assert locate(dest, zone) == [Target(TLS, "198.51.100.1", 5061, "example.net")]


def test_websocket_has_no_srv() -> None:
    zone: Zone = {("ws.example.net", A): ["198.51.100.2"]}
    dest = Destination("ws.example.net", transport="ws")
    targets, batches = run(
        Locator(dest, choose=first, transports=(Transport.WS,), ip_versions=(4,)), zone
    )
    assert batches == [[Query("ws.example.net", A)]]
    assert targets == [Target(Transport.WS, "198.51.100.2", 80, "ws.example.net")]


@pytest.mark.parametrize(
    ("dest", "kwargs"),
    [
        (Destination("example.com", scheme="sips", transport="udp"), {}),
        (Destination("example.com", transport="carrier-pigeon"), {}),
        (Destination("example.com", scheme="tel"), {}),
        (Destination("example.com", transport="sctp"), {}),
        (Destination("example.com", scheme="sips"), {"transports": (UDP, TCP)}),
        (Destination("example.com"), {"transports": ()}),
    ],
)
def test_unusable_destinations_are_refused(dest: Destination, kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        Locator(dest, choose=first, **kwargs)  # type: ignore[arg-type]


def test_targets_before_answers_is_a_caller_bug() -> None:
    locator = Locator(Destination("example.com"), choose=first)
    assert not locator.done
    with pytest.raises(LocalProtocolError):
        locator.targets()
    with pytest.raises(LocalProtocolError):
        locator.feed_addresses("example.com", SRV, [])


# -- NAPTR ----------------------------------------------------------------------------


def test_naptr_srv_a_chain_in_order() -> None:
    targets, batches = run(Locator(Destination("example.com"), choose=first), EXAMPLE)
    assert batches[0] == [Query("example.com", NAPTR)]
    assert batches[1] == [
        Query("_sips._tcp.example.com", SRV),
        Query("_sip._tcp.example.com", SRV),
        Query("_sip._udp.example.com", SRV),
    ]
    assert set(batches[2]) == {
        Query("server1.example.com", A),
        Query("server1.example.com", AAAA),
        Query("server2.example.com", A),
        Query("server2.example.com", AAAA),
    }
    name = "example.com"
    assert targets == [
        # most preferred NAPTR first (TLS), then the others for failover
        Target(TLS, "192.0.2.1", 5061, name),
        Target(TLS, "2001:db8::1", 5061, name),
        Target(TCP, "192.0.2.1", 5060, name),
        Target(TCP, "2001:db8::1", 5060, name),
        Target(UDP, "192.0.2.1", 5060, name),
        Target(UDP, "2001:db8::1", 5060, name),
        Target(UDP, "192.0.2.2", 5062, name),  # SRV priority 1 after priority 0
    ]


def test_ipv6_preference() -> None:
    targets = locate(Destination("example.com", transport="udp"), EXAMPLE, ip_versions=(6, 4))
    assert [t.host for t in targets] == ["2001:db8::1", "192.0.2.1", "192.0.2.2"]
    v4_only = locate(Destination("example.com", transport="udp"), EXAMPLE, ip_versions=(4,))
    assert [t.host for t in v4_only] == ["192.0.2.1", "192.0.2.2"]


def test_sips_uri_keeps_only_sips_naptr() -> None:
    targets = locate(Destination("example.com", scheme="sips"), EXAMPLE)
    assert {t.transport for t in targets} == {TLS}
    assert targets[0] == Target(TLS, "192.0.2.1", 5061, "example.com")


def test_client_without_tls_skips_sips_naptr() -> None:
    targets = locate(Destination("example.com"), EXAMPLE, transports=(UDP, TCP))
    assert targets[0].transport is TCP
    assert TLS not in {t.transport for t in targets}


def test_order_naptr_filters_and_sorts() -> None:
    records = [
        NaptrRecord(20, 10, "S", "sip+d2u", "_sip._udp.x."),
        NaptrRecord(10, 20, "s", "SIP+D2T", "_sip._tcp.x."),
        NaptrRecord(10, 10, "s", "SIPS+D2T", "_sips._tcp.x."),
        NaptrRecord(5, 5, "s", "SIPS+D2U", "_sips._udp.x."),  # not a defined service
        NaptrRecord(5, 5, "u", "SIP+D2T", "_sip._tcp.y."),  # not terminal SRV
        NaptrRecord(5, 5, "s", "E2U+sip", "_sip._tcp.z."),  # ENUM, not ours
        NaptrRecord(5, 5, "s", "SIP+D2S", "_sip._sctp.x."),  # SCTP not supported here
        NaptrRecord(5, 5, "s", "SIP+D2U", "."),  # empty replacement
    ]
    assert order_naptr(records, secure=False) == [
        (TLS, "_sips._tcp.x"),
        (TCP, "_sip._tcp.x"),
        (UDP, "_sip._udp.x"),
    ]
    assert order_naptr(records, secure=True) == [(TLS, "_sips._tcp.x")]


def test_unusable_naptr_falls_back_to_srv_queries() -> None:
    zone: Zone = {
        ("example.org", NAPTR): [NaptrRecord(10, 10, "s", "SIP+D2S", "_sip._sctp.example.org")],
        ("_sip._udp.example.org", SRV): [SrvRecord(0, 0, 5060, "pbx.example.org")],
        ("pbx.example.org", A): ["203.0.113.5"],
    }
    targets, batches = run(Locator(Destination("example.org"), choose=first), zone)
    assert batches[1] == [
        Query("_sips._tcp.example.org", SRV),
        Query("_sip._tcp.example.org", SRV),
        Query("_sip._udp.example.org", SRV),
    ]
    assert targets == [Target(UDP, "203.0.113.5", 5060, "example.org")]


def test_naptr_whose_srv_is_empty_falls_back_to_a_with_its_transport() -> None:
    zone: Zone = {
        ("example.org", NAPTR): [NaptrRecord(10, 10, "s", "SIP+D2T", "_sip._tcp.example.org")],
        ("example.org", AAAA): ["2001:db8::5"],
    }
    assert locate(Destination("example.org"), zone) == [
        Target(TCP, "2001:db8::5", 5060, "example.org")
    ]


# -- no NAPTR -------------------------------------------------------------------------


def test_srv_without_naptr_prefers_tls_then_tcp_then_udp() -> None:
    zone: Zone = {
        ("_sip._udp.example.org", SRV): [SrvRecord(0, 0, 5060, "udp.example.org")],
        ("_sip._tcp.example.org", SRV): [SrvRecord(0, 0, 5070, "tcp.example.org")],
        ("udp.example.org", A): ["203.0.113.1"],
        ("tcp.example.org", A): ["203.0.113.2"],
    }
    assert locate(Destination("example.org"), zone) == [
        Target(TCP, "203.0.113.2", 5070, "example.org"),
        Target(UDP, "203.0.113.1", 5060, "example.org"),
    ]


def test_sips_without_naptr_asks_only_sips_srv() -> None:
    zone: Zone = {
        ("_sips._tcp.example.org", SRV): [SrvRecord(0, 0, 5061, "tls.example.org")],
        ("tls.example.org", A): ["203.0.113.3"],
    }
    targets, batches = run(Locator(Destination("example.org", scheme="sips"), choose=first), zone)
    assert batches[1] == [Query("_sips._tcp.example.org", SRV)]
    assert targets == [Target(TLS, "203.0.113.3", 5061, "example.org")]


@pytest.mark.parametrize(("scheme", "transport", "port"), [("sip", UDP, 5060), ("sips", TLS, 5061)])
def test_plain_a_aaaa_at_default_port(scheme: str, transport: Transport, port: int) -> None:
    zone: Zone = {("example.org", A): ["203.0.113.4"], ("example.org", AAAA): ["2001:db8::4"]}
    assert locate(Destination("Example.ORG", scheme=scheme), zone) == [
        Target(transport, "203.0.113.4", port, "example.org"),
        Target(transport, "2001:db8::4", port, "example.org"),
    ]


def test_nothing_at_all_gives_no_targets() -> None:
    assert locate(Destination("nowhere.invalid"), {}) == []


def test_srv_dot_target_means_not_available_and_stops_a_fallback() -> None:
    zone: Zone = {
        ("_sips._tcp.example.org", SRV): [SrvRecord(0, 0, 0, ".")],
        ("example.org", A): ["203.0.113.4"],
    }
    assert locate(Destination("example.org", scheme="sips"), zone) == []


def test_srv_target_given_as_ip_is_used_without_lookup() -> None:
    zone: Zone = {("_sip._udp.example.org", SRV): [SrvRecord(0, 0, 5060, "203.0.113.8")]}
    dest = Destination("example.org", transport="udp")
    assert locate(dest, zone) == [Target(UDP, "203.0.113.8", 5060, "example.org")]


def test_duplicate_addresses_are_tried_once() -> None:
    zone: Zone = {
        ("_sip._udp.example.org", SRV): [
            SrvRecord(0, 0, 5060, "a.example.org"),
            SrvRecord(1, 0, 5060, "b.example.org"),
        ],
        ("a.example.org", A): ["203.0.113.8"],
        ("b.example.org", A): ["203.0.113.8", "203.0.113.9"],
    }
    targets = locate(Destination("example.org", transport="udp"), zone)
    assert [t.host for t in targets] == ["203.0.113.8", "203.0.113.9"]


def test_answers_fed_ahead_are_not_asked_again() -> None:
    locator = Locator(Destination("example.com", port=5060), choose=first, ip_versions=(4,))
    locator.feed_addresses("EXAMPLE.com.", A, ["192.0.2.9"])
    assert locator.pending() == ()
    assert locator.targets() == [Target(UDP, "192.0.2.9", 5060, "example.com")]


# -- RFC 2782 weighted order ----------------------------------------------------------


def test_srv_weighted_choice_follows_the_draws() -> None:
    records = [
        SrvRecord(10, 60, 5060, "big"),
        SrvRecord(10, 20, 5060, "small"),
        SrvRecord(10, 0, 5060, "zero"),
        SrvRecord(5, 0, 5060, "primary"),
    ]
    # priority 5: one record, draw from [0, 0]. priority 10, zero first in the sum:
    # running sums zero=0, big=60, small=80. Draw 61 -> small; then [zero, big], draw 0 -> zero.
    ordered = order_srv(records, scripted(0, 61, 0, 0))
    assert [r.target for r in ordered] == ["primary", "small", "zero", "big"]
    ordered = order_srv(records, scripted(0, 1, 0, 0))
    assert [r.target for r in ordered] == ["primary", "big", "zero", "small"]


def test_srv_weights_shape_first_choice_exactly() -> None:
    records = [SrvRecord(0, 3, 1, "a"), SrvRecord(0, 1, 1, "b"), SrvRecord(0, 0, 1, "c")]
    firsts: dict[str, int] = {}
    for draw in range(5):  # every possible first draw in [0, 4]
        target = order_srv(records, scripted(draw, 0, 0))[0].target
        firsts[target] = firsts.get(target, 0) + 1
    assert firsts == {"c": 1, "a": 3, "b": 1}


srv_records = st.lists(
    st.builds(
        SrvRecord,
        priority=st.integers(0, 3),
        weight=st.integers(0, 100),
        port=st.integers(1, 65535),
        target=st.sampled_from(["a.x.", "b.x.", "c.x.", "d.x.", "."]),
    ),
    max_size=12,
)


@given(records=srv_records, seed=st.integers(-(2**63), 2**63 - 1))
def test_weighted_order_is_a_permutation_respecting_priority(
    records: list[SrvRecord], seed: int
) -> None:
    ordered = order_srv(records, choose_from_entropy(SeededEntropy(seed)))
    usable = [r for r in records if r.target != "."]
    assert sorted(ordered, key=repr) == sorted(usable, key=repr)
    priorities = [r.priority for r in ordered]
    assert priorities == sorted(priorities)


@given(n=st.integers(1, 10_000), seed=st.integers(0, 2**32))
def test_choose_from_entropy_stays_in_range(n: int, seed: int) -> None:
    choose = choose_from_entropy(SeededEntropy(seed))
    assert all(0 <= choose(n) < n for _ in range(5))


def test_choose_from_entropy_rejects_empty_range() -> None:
    with pytest.raises(LocalProtocolError):
        choose_from_entropy(SeededEntropy())(0)


# -- §4.3 failover --------------------------------------------------------------------


def test_failover_walks_the_list_in_order() -> None:
    targets = locate(Destination("example.com"), EXAMPLE)
    failover = Failover(targets)
    assert failover.current == targets[0]
    assert failover.remaining == len(targets)
    tried = [failover.current]
    kinds = [FailureKind.TRANSPORT_ERROR, FailureKind.TIMEOUT, FailureKind.SERVICE_UNAVAILABLE]
    for i in range(len(targets)):
        nxt = failover.fail(kinds[i % 3])
        if nxt is not None:
            tried.append(nxt)
    assert tried == targets
    assert failover.current is None
    assert failover.remaining == 0
    assert failover.fail(FailureKind.TIMEOUT) is None
    assert [t for t, _ in failover.failures] == targets


def test_only_503_fails_over() -> None:
    assert failure_from_status(503) is FailureKind.SERVICE_UNAVAILABLE
    assert [failure_from_status(s) for s in (180, 200, 404, 500, 504)] == [None] * 5


# -- §18.2.2 responses ----------------------------------------------------------------


def test_udp_response_goes_to_received_and_rport() -> None:
    via = ViaHop("UDP", "client.example.com", 5060, received="192.0.2.50", rport=40001)
    route = response_route(via)
    assert route.reuse_connection is False
    assert route.fallback is None
    assert locate(route.destination, {}) == [Target(UDP, "192.0.2.50", 40001)]


def test_udp_response_to_received_uses_sent_by_port_or_default() -> None:
    route = response_route(ViaHop("udp", "client.example.com", 5070, received="192.0.2.50"))
    assert locate(route.destination, {}) == [Target(UDP, "192.0.2.50", 5070)]
    route = response_route(ViaHop("UDP", "client.example.com", received="2001:db8::50"))
    assert locate(route.destination, {}) == [Target(UDP, "2001:db8::50", 5060)]


def test_udp_response_to_maddr() -> None:
    route = response_route(ViaHop("UDP", "192.0.2.1", received="192.0.2.60", maddr="239.255.255.1"))
    assert locate(route.destination, {}) == [Target(UDP, "239.255.255.1", 5060)]


def test_udp_response_to_sent_by_ip() -> None:
    route = response_route(ViaHop("UDP", "[2001:db8::7]", 5062))
    assert locate(route.destination, {}) == [Target(UDP, "2001:db8::7", 5062)]


def test_udp_response_to_sent_by_name_without_port_uses_srv() -> None:
    # RFC 3263 §5: SRV for the Via's transport, then A/AAAA.
    zone: Zone = {
        ("_sip._udp.client.example.com", SRV): [SrvRecord(0, 0, 5090, "ua.example.com")],
        ("ua.example.com", A): ["192.0.2.70"],
    }
    route = response_route(ViaHop("UDP", "client.example.com"))
    targets, batches = run(Locator(route.destination, choose=first), zone)
    assert batches[0] == [Query("_sip._udp.client.example.com", SRV)]
    assert targets == [Target(UDP, "192.0.2.70", 5090, "client.example.com")]


def test_udp_response_to_sent_by_name_with_port_uses_a_only() -> None:
    zone: Zone = {("client.example.com", A): ["192.0.2.71"]}
    route = response_route(ViaHop("UDP", "client.example.com", 5099))
    assert locate(route.destination, zone, ip_versions=(4,)) == [
        Target(UDP, "192.0.2.71", 5099, "client.example.com")
    ]


def test_tcp_response_reuses_connection_then_received_then_sent_by() -> None:
    route = response_route(ViaHop("TCP", "client.example.com", received="192.0.2.80", rport=3333))
    assert route.reuse_connection
    # rport is the client's ephemeral source port: useless for a new connection.
    assert locate(route.destination, {}) == [Target(TCP, "192.0.2.80", 5060)]
    assert route.fallback == Destination("client.example.com", transport="TCP")


def test_tls_response_without_received_resolves_sent_by() -> None:
    zone: Zone = {
        ("_sips._tcp.client.example.com", SRV): [SrvRecord(0, 0, 5061, "ua.example.com")],
        ("ua.example.com", A): ["192.0.2.90"],
    }
    route = response_route(ViaHop("TLS", "client.example.com"))
    assert route.reuse_connection
    assert route.fallback is None
    assert locate(route.destination, zone) == [
        Target(TLS, "192.0.2.90", 5061, "client.example.com")
    ]


def test_unknown_via_transport_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        response_route(ViaHop("QUIC", "client.example.com"))
