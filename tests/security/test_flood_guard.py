"""The per-source flood guard on its own: counting over a sliding window, bans and
their end, exempt networks, the table's bound, scanners (runtime/flood.py). Time is
stepped by hand."""

from __future__ import annotations

import pytest

from sipline.core.message import Request, parse_message
from sipline.runtime.flood import FloodConfig, FloodGuard, networks
from sipline.runtime.overload import OverloadConfig, OverloadGuard
from sipline.runtime.timers import Timers
from sipline.testing import FakeClock

A = ("127.0.0.2", 5060)
B = ("127.0.0.3", 5060)


def guard(**overrides: object) -> FloodGuard:
    base = {"max_requests": 100, "window_s": 2.0, "ban_s": 60.0, "exempt": networks(["127.0.0.1"])}
    base.update(overrides)
    g = FloodGuard(FloodConfig(**base))  # type: ignore[arg-type]
    g.tick(0.0)
    return g


def send(g: FloodGuard, remote: tuple[str, int], n: int, data: bytes = b"REGISTER x") -> int:
    return sum(g.admit(remote, data) for _ in range(n))


def test_a_source_over_the_limit_is_banned_and_others_are_not() -> None:
    g = guard()
    assert send(g, A, 100) == 100
    assert not g.admit(A, b"x")  # the 101st in the window
    assert g.banned("127.0.0.2")
    assert send(g, A, 1000) == 0
    assert g.stats.dropped == 1001 and g.stats.bans == 1  # the 101st too
    assert send(g, B, 100) == 100
    assert not g.banned("127.0.0.3")


def test_the_window_slides() -> None:
    g = guard()
    assert send(g, A, 80) == 80
    g.tick(2.0)  # a new bucket: the old one still counts in full
    assert send(g, A, 20) == 20
    assert not g.admit(A, b"x")  # 80 + 20 + 1 > 100


def test_a_steady_rate_under_the_limit_is_never_banned() -> None:
    g = guard()
    now = 0.0
    for _ in range(200):  # 100 s at 40 per second (80 per window)
        now += 0.5
        g.tick(now)
        assert send(g, A, 20) == 20
    assert g.stats.bans == 0


def test_a_ban_ends() -> None:
    g = guard(ban_s=10.0)
    send(g, A, 101)
    g.tick(5.0)
    assert not g.admit(A, b"x")
    for t in (6.0, 8.0, 10.0, 10.5):
        g.tick(t)
    assert g.admit(A, b"x")
    assert not g.banned("127.0.0.2")


def test_exempt_sources_are_never_banned() -> None:
    g = guard()
    assert send(g, ("127.0.0.1", 5060), 10_000) == 10_000
    g.ban("127.0.0.1", 60.0)
    assert not g.banned("127.0.0.1")


def test_silent_sources_are_forgotten_and_the_table_is_bounded() -> None:
    g = guard(max_sources=50)
    for i in range(100):
        g.admit((f"10.0.{i // 256}.{i % 256}", 5060), b"x")
    assert g.sources == 50  # the rest pass uncounted
    g.tick(2.0)
    g.tick(4.0)
    assert g.sources == 0  # silent for a whole bucket
    send(g, A, 101)
    for t in (6.0, 8.0, 10.0):
        g.tick(t)
    assert g.sources == 1  # a banned source is kept until its ban ends


def test_bans_from_elsewhere_are_applied_and_not_published_again() -> None:
    g = guard()
    published: list[tuple[str, float]] = []
    g.on_ban = lambda host, seconds: published.append((host, seconds))
    g.ban("127.0.0.9", 30.0, publish=False)
    assert g.banned("127.0.0.9") and published == []
    send(g, A, 101)
    assert published == [("127.0.0.2", 60.0)]


def test_emergency_calls_from_a_banned_source_can_be_spared() -> None:
    g = guard()
    g.spare = lambda data, host: b"sip:112@" in data
    send(g, A, 101)
    assert not g.admit(A, b"INVITE sip:bob@example.com SIP/2.0\r\n")
    assert g.admit(A, b"INVITE sip:112@example.com SIP/2.0\r\n")
    assert g.stats.spared == 1
    # Nor is the emergency call that itself crosses the limit dropped.
    other = ("127.0.0.5", 5060)
    send(g, other, 100)
    assert g.admit(other, b"INVITE sip:112@example.com SIP/2.0\r\n")
    assert g.banned("127.0.0.5") and g.stats.spared == 2


def scan_request(ua: str) -> Request:
    msg = parse_message(
        (
            "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-1\r\n"
            "From: <sip:100@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\n"
            f"Call-ID: scan\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, Request)
    return msg


def test_scanners_are_refused_and_banned() -> None:
    g = guard()
    assert g.refuse_scanner(scan_request("friendly-scanner"), A)
    assert g.banned("127.0.0.2")
    assert not g.refuse_scanner(scan_request("Zoiper rv2.10"), B)
    assert not g.banned("127.0.0.3")
    g.admit(("127.0.0.1", 5060), b"x")
    assert not g.refuse_scanner(scan_request("sipvicious"), ("127.0.0.1", 5060))  # trusted


def test_the_tick_runs_on_the_endpoints_timers_and_a_ban_ends_with_the_clock() -> None:
    """Started on `Timers`, the guard ticks every quarter window of the injected clock:
    buckets turn and bans end as a FakeClock advances, with no loop and no sleeping."""
    clock = FakeClock(start=100.0)
    timers = Timers(clock)
    g = FloodGuard(FloodConfig(max_requests=10, window_s=2.0, ban_s=5.0, exempt=()))
    g.start(timers)
    assert timers.next_deadline() == 100.5  # a quarter window
    send(g, A, 11)
    assert g.banned("127.0.0.2")
    clock.advance(4.9)
    assert g.banned("127.0.0.2")  # the clock the guard reads moved with the ticks
    clock.advance(0.6)  # a tick at 105.5, past the ban's end at 105.0
    assert not g.banned("127.0.0.2") and g.admit(A, b"x")
    clock.advance(4.0)  # two silent windows: the source is forgotten
    assert g.sources == 0
    g.stop()
    assert timers.next_deadline() is None


def test_the_overload_sampler_runs_on_the_endpoints_timers() -> None:
    """On a FakeClock the lag read is none (stepped time has no loop lag); the other
    signals are sampled at each `sample_interval_s` of the injected clock."""
    clock = FakeClock()
    timers = Timers(clock)
    g = OverloadGuard(OverloadConfig(sample_interval_s=0.05), pending=lambda: 0, live=lambda: 0)
    waits = iter([1.0, 1.0, 1.0, 0.0])
    g.response_wait = lambda: next(waits, 0.0)
    g.start(timers)
    clock.advance(0.049)
    assert g.shed_fraction == 0.0  # no sample yet
    clock.advance(0.001)
    assert g.shed_fraction == 0.1 and g.stats.episodes == 1  # first sample, at 0.05
    clock.advance(0.1)  # samples at 0.10 and 0.15: the wait still holds
    assert g.shed_fraction == pytest.approx(0.225)
    clock.advance(0.05)  # the wait is gone: the fraction decays
    assert g.shed_fraction == pytest.approx(0.205)
    assert g.lag_s == 0.0 and g.stats.max_lag_s == 0.0
    g.stop()
    assert timers.next_deadline() is None
