"""The pure parts of what an operator sees: configuration checks, the admin guard,
pcap and HEP encoding, the ladder, the call record updates in SQLite (schema 7) and
the call tracker fed with the messages of calls."""

from __future__ import annotations

import base64
import ipaddress
import logging
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from sipline.cli.records import parse_since
from sipline.core.message import parse_message
from sipline.server.config import ConfigError, load_config
from sipline.server.ops.auth import Guard
from sipline.server.ops.config import HttpSettings
from sipline.server.records.calls import CallTracker
from sipline.server.records.hep import encode
from sipline.server.records.pcap import LINKTYPE_RAW, Packet, pcap_bytes
from sipline.server.records.trace import SERVER, ladder, packets
from sipline.storage import SCHEMA_VERSION, SqliteStore, Store
from sipline.storage.location import open_store
from sipline.storage.ops import CallUpdate, TracedMessage
from sipline.storage.sqlite_schema import MIGRATIONS

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@host\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def response(status: int, reason: str, cseq: str = "1 INVITE", contact: str = "") -> bytes:
    extra = f"Contact: <{contact}>\r\n" if contact else ""
    return (
        f"SIP/2.0 {status} {reason}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        f"From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
        f"Call-ID: c1@host\r\nCSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def bye(from_tag: str) -> bytes:
    return (
        "BYE sip:bob@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n"
        f"From: <sip:x@example.com>;tag={from_tag}\r\nTo: <sip:y@example.com>;tag=zz\r\n"
        "Call-ID: c1@host\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (
            {"http": {"listen": "0.0.0.0:8080"}},
            "http.listen: 0.0.0.0:8080 is not a loopback address",
        ),
        (
            {"http": {"listen": "192.0.2.1:8080", "admin_password": "longenough"}},
            "http.listen: 192.0.2.1:8080 is not a loopback address: it needs http.tls_cert",
        ),
        ({"http": {"listen": "localhost:8080"}}, "http.listen: 'localhost:8080' must be IP:PORT"),
        (
            {"http": {"admin_password": "short"}},
            "http.admin_password: must be a string of at least 8",
        ),
        (
            {"http": {"tls_cert": "c.pem"}},
            "http.tls_cert: http.tls_cert and http.tls_key go together",
        ),
        ({"http": {"port": 1}}, "http.port: unknown key (known: listen,"),
        ({"log": {"format": "xml"}}, "log.format: must be 'text' or 'json'"),
        ({"hep": {"address": "127.0.0.1"}}, "hep.address: '127.0.0.1' must be IP:PORT"),
        ({"cdr": {"keep_days": 0}}, "cdr.keep_days: must be a positive number"),
    ],
)
def test_configuration_errors_name_the_key(doc: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError, match="^" + error.replace("(", r"\(").replace(".", r"\.")):
        load_config(doc)


def test_a_public_listener_with_tls_and_a_credential_is_allowed() -> None:
    cfg = load_config({"http": {"listen": "[::]:8443", "admin_password": "longenough",
                                "tls_cert": "c.pem", "tls_key": "k.pem"}})  # fmt: skip
    assert cfg.ops.http.listen == "[::]:8443" and cfg.ops.cdr.keep_days == 90.0


# -- the admin guard ----------------------------------------------------------------------------
def test_guard() -> None:
    guard = Guard(HttpSettings(admin_password="secret-pw", token="tok-12345"))
    basic = "Basic " + base64.b64encode(b"admin:secret-pw").decode()
    assert guard.allowed(basic, None)
    assert not guard.allowed("Basic " + base64.b64encode(b"root:secret-pw").decode(), None)
    assert not guard.allowed("Basic !!!", None)
    assert guard.allowed("Bearer tok-12345", None) and not guard.allowed("Bearer tok", None)
    session = guard.new_session(now=1000.0)
    assert guard.session_ok(session, now=1001.0)
    assert not guard.session_ok(session, now=1000.0 + 13 * 3600)  # expired
    until, _, mac = session.partition(".")
    assert not guard.session_ok(f"{int(until) + 999}.{mac}", now=1001.0)  # tampered
    assert not guard.allowed(None, "junk") and not guard.allowed(None, None)
    assert Guard(HttpSettings()).allowed(None, None)  # no credential: loopback only


def test_guard_locks_out_an_address_guessing_passwords() -> None:
    guard = Guard(HttpSettings(admin_password="secret-pw"))
    for i in range(5):
        assert not guard.locked_out("192.0.2.1", now=100.0 + i)
        guard.failed("192.0.2.1", now=100.0 + i)
    assert guard.locked_out("192.0.2.1", now=105.0)
    assert not guard.locked_out("192.0.2.2", now=105.0)  # others are not
    assert not guard.locked_out("192.0.2.1", now=164.5)  # the window has passed


# -- pcap and HEP -------------------------------------------------------------------------------
def _checksum_ok(header: bytes) -> bool:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_pcap_of_ipv4_and_ipv6_messages() -> None:
    data = pcap_bytes([
        Packet(1000.25, ("127.0.0.1", 5070), ("127.0.0.2", 5060), INVITE),
        Packet(1000.5, ("::1", 5070), ("::1", 5060), b"x" * 3),
    ])  # fmt: skip
    magic, major, minor, _, _, snaplen, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, snaplen, link) == (0xA1B2C3D4, 2, 4, 65535, LINKTYPE_RAW)
    sec, usec, incl, orig = struct.unpack("<IIII", data[24:40])
    assert (sec, usec, incl, orig) == (1000, 250000, 28 + len(INVITE), 28 + len(INVITE))
    ip = data[40:60]
    assert ip[0] == 0x45 and ip[9] == 17 and _checksum_ok(ip)
    assert ipaddress.ip_address(ip[12:16]) == ipaddress.ip_address("127.0.0.1")
    assert struct.unpack("!HH", data[60:64]) == (5070, 5060)
    assert data[68 : 68 + len(INVITE)] == INVITE
    second = data[40 + incl :]
    assert struct.unpack("<IIII", second[:16])[2] == 40 + 8 + 3
    assert second[16] >> 4 == 6 and second[16 + 6] == 17  # IPv6, next header UDP
    assert second[-3:] == b"xxx"


def test_hep3_chunks() -> None:
    packet = encode(INVITE, "UDP", ("127.0.0.1", 5070), ("127.0.0.2", 5060), 1000.5, 42, "pw")
    assert packet[:4] == b"HEP3" and struct.unpack("!H", packet[4:6])[0] == len(packet)
    chunks, offset = {}, 6
    while offset < len(packet):
        vendor, kind, length = struct.unpack("!HHH", packet[offset : offset + 6])
        assert vendor == 0
        chunks[kind] = packet[offset + 6 : offset + length]
        offset += length
    assert offset == len(packet)
    assert chunks[1] == b"\x02" and chunks[2] == b"\x11"
    assert chunks[3] == bytes([127, 0, 0, 1]) and chunks[4] == bytes([127, 0, 0, 2])
    assert struct.unpack("!H", chunks[7])[0] == 5070 and struct.unpack("!H", chunks[8])[0] == 5060
    assert (
        struct.unpack("!I", chunks[9])[0] == 1000 and struct.unpack("!I", chunks[10])[0] == 500000
    )
    assert chunks[11] == b"\x01" and struct.unpack("!I", chunks[12])[0] == 42
    assert chunks[14] == b"pw" and chunks[15] == INVITE and chunks[17] == b"c1@host"
    v6 = encode(INVITE, "TCP", ("::1", 5070), ("127.0.0.1", 5060), 0.0, 1)
    assert b"\x00\x00\x00\x01\x00\x07\x0a" in v6  # family IPv6 when the two differ


# -- ladder -------------------------------------------------------------------------------------
def test_ladder_columns_and_pcap_direction() -> None:
    msgs = [
        TracedMessage("c1@host", 10.0, False, "UDP", "127.0.0.1:5060", "127.0.0.1:5070", INVITE),
        TracedMessage("c1@host", 10.1, True, "UDP", "127.0.0.1:40000", "127.0.0.1:5080", INVITE),
        TracedMessage("c1@host", 10.3, False, "UDP", "127.0.0.1:40000", "127.0.0.1:5080", response(180, "Ringing")),
        TracedMessage("c1@host", 10.4, True, "UDP", "127.0.0.1:5060", "127.0.0.1:5070", response(180, "Ringing")),
    ]  # fmt: skip
    doc = ladder(msgs)
    assert doc["parties"] == ["udp:127.0.0.1:5070", SERVER, "udp:127.0.0.1:5080"]
    rows = doc["messages"]
    assert [(r["from"], r["to"], r["label"]) for r in rows] == [
        ("udp:127.0.0.1:5070", SERVER, "INVITE sip:bob@example.com"),
        (SERVER, "udp:127.0.0.1:5080", "INVITE sip:bob@example.com"),
        ("udp:127.0.0.1:5080", SERVER, "180 Ringing"),
        (SERVER, "udp:127.0.0.1:5070", "180 Ringing"),
    ]
    assert [r["t"] for r in rows] == pytest.approx([0.0, 0.1, 0.3, 0.4])
    first, second = packets(msgs)[:2]
    assert (first.src, first.dst) == (("127.0.0.1", 5070), ("127.0.0.1", 5060))
    assert (second.src, second.dst) == (("127.0.0.1", 40000), ("127.0.0.1", 5080))


# -- call records in SQLite ---------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The call records of each backend."""
    if request.param == "postgresql":
        s = open_store(request.getfixturevalue("postgres_url"))
    else:
        s = SqliteStore(tmp_path / "s.db")
    yield s
    s.close()


def run(tracker_ops: list[CallUpdate], store: Store) -> None:
    store.record(tracker_ops)
    tracker_ops.clear()


def test_a_schema_7_database_is_migrated_to_8(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db, isolation_level=None)
    for statements in MIGRATIONS[:7]:  # the schema as version 7 left it
        for statement in statements:
            con.execute(statement)
    con.execute("PRAGMA user_version = 7")
    con.close()
    store = SqliteStore(db)
    assert store.schema_version == SCHEMA_VERSION >= 8
    assert store.list_calls() == [] and store.count_active_calls() == 0
    store.close()


def test_an_answered_call_hung_up_by_the_callee(store: Store) -> None:
    ops: list[CallUpdate] = []
    tracker = CallTracker(None, ops.append)
    src = "udp:127.0.0.1:5070"
    tracker.observe(False, parse_message(INVITE), src, 100.0)
    tracker.observe(
        True, parse_message(response(407, "Proxy Authentication Required")), src, 100.01
    )
    run(ops, store)
    [challenged] = store.list_calls()
    assert (
        challenged.status == 407
        and challenged.ended_at is not None
        and challenged.hangup_by is None
    )
    tracker.observe(False, parse_message(INVITE.replace(b"CSeq: 1", b"CSeq: 2")), src, 100.1)
    tracker.observe(True, parse_message(response(180, "Ringing", "2 INVITE")), src, 100.5)
    ok = response(200, "OK", "2 INVITE", contact="sip:bob@127.0.0.1:5080")
    tracker.observe(True, parse_message(ok), src, 101.0)
    tracker.observe(True, parse_message(ok), src, 101.5)  # a retransmission
    run(ops, store)
    assert store.count_active_calls() == 1
    tracker.observe(False, parse_message(bye("b1")), "udp:127.0.0.1:5080", 111.0)
    run(ops, store)
    [call] = store.list_calls(user="alice@example.com")
    assert (call.started_at, call.ringing_at, call.answered_at, call.ended_at) == (
        100.0,
        100.5,
        101.0,
        111.0,
    )
    assert call.duration_s == 10.0 and call.hangup_by == "callee" and call.status == 200
    assert call.answered_by == "sip:bob@127.0.0.1:5080" and call.source == src
    assert store.count_active_calls() == 0
    assert store.list_calls(since=100.5) == [] and store.list_calls(user="carol@example.com") == []
    assert store.purge_records(before=200.0) == 1 and store.list_calls() == []


def test_who_forwarded_the_call(store: Store) -> None:
    ops: list[CallUpdate] = []
    tracker = CallTracker(None, ops.append)
    tracker.observe(False, parse_message(INVITE), "udp:127.0.0.1:5070", 1.0)
    forwarded = INVITE.replace(
        b"INVITE sip:bob@example.com", b"INVITE sip:carol@127.0.0.1:5090"
    ).replace(
        b"Content-Length",
        b"Diversion: <sip:bob@example.com>;reason=unconditional\r\nContent-Length",
    )
    tracker.observe(True, parse_message(forwarded), "udp:127.0.0.1:5090", 1.1)
    ok = response(200, "OK", contact="sip:carol@127.0.0.1:5090")
    tracker.observe(True, parse_message(ok), "udp:127.0.0.1:5070", 2.0)
    run(ops, store)
    call = store.get_call("c1@host")
    assert call is not None and call.callee == "sip:bob@example.com"
    assert (
        call.forwarded_by == "sip:bob@example.com"
        and call.answered_by == "sip:carol@127.0.0.1:5090"
    )


def test_a_named_contact_and_a_retransmitted_bye(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ops: list[CallUpdate] = []
    tracker = CallTracker(None, ops.append)
    tracker.observe(False, parse_message(INVITE), "udp:127.0.0.1:5070", 1.0)
    ok = response(200, "OK").replace(
        b"Content-Length",
        b'Contact: "Bob, desk" <sip:bob@127.0.0.1:5080;transport=udp>;expires=60\r\nContent-Length',
    )
    tracker.observe(True, parse_message(ok), "udp:127.0.0.1:5070", 2.0)
    with caplog.at_level(logging.INFO, logger="sipline.calls"):
        tracker.observe(False, parse_message(bye("a1")), "udp:127.0.0.1:5070", 5.0)
        tracker.observe(False, parse_message(bye("a1")), "udp:127.0.0.1:5070", 5.5)
    run(ops, store)
    ended = [r.getMessage() for r in caplog.records if "call ended" in r.getMessage()]
    assert ended == [
        "call ended call_id=c1@host by=x@example.com src=udp:127.0.0.1:5070 duration=3.0s"
    ]
    call = store.get_call("c1@host")
    assert call is not None and call.answered_by == "sip:bob@127.0.0.1:5080;transport=udp"
    assert (call.hangup_by, call.duration_s, call.ended_at) == ("caller", 3.0, 5.0)


def test_a_cancelled_call_and_a_busy_callee(store: Store) -> None:
    ops: list[CallUpdate] = []
    tracker = CallTracker(None, ops.append)
    tracker.observe(False, parse_message(INVITE), "udp:127.0.0.1:5070", 1.0)
    tracker.observe(True, parse_message(response(487, "Request Terminated")), "x", 2.0)
    run(ops, store)
    [call] = store.list_calls()
    assert (call.status, call.hangup_by, call.duration_s) == (487, "caller", None)
    other = INVITE.replace(b"c1@host", b"c2@host")
    tracker.observe(False, parse_message(other), "udp:127.0.0.1:5070", 3.0)
    busy = response(486, "Busy Here").replace(b"c1@host", b"c2@host")
    tracker.observe(False, parse_message(busy), "udp:127.0.0.1:5080", 3.5)  # from the callee
    tracker.observe(True, parse_message(busy), "udp:127.0.0.1:5070", 3.5)
    run(ops, store)
    assert store.get_call("c2@host") is not None
    assert store.get_call("c2@host").hangup_by == "callee"  # type: ignore[union-attr]


def test_attempts_that_never_ended_are_closed(store: Store) -> None:
    store.cdr_start("old", "a@x", "t", "sip:b@x", "udp:127.0.0.1:1", 100.0)
    store.cdr_start("new", "a@x", "t", "sip:b@x", "udp:127.0.0.1:1", 500.0)
    store.cdr_start("talking", "a@x", "t", "sip:b@x", "udp:127.0.0.1:1", 100.0)
    store.cdr_answered("talking", 101.0, "sip:b@127.0.0.1", None)
    assert store.close_stale_calls(started_before=400.0, at=600.0) == 1
    old = store.get_call("old")
    assert old is not None and (old.status, old.ended_at, old.hangup_by) == (408, 600.0, "server")
    assert {c.call_id for c in store.list_calls(active=True)} == {"new", "talking"}


def test_since_accepts_durations_and_dates() -> None:
    assert parse_since("30m", now=10_000.0) == 10_000.0 - 1800
    assert parse_since("2d", now=200_000.0) == 200_000.0 - 172_800
    assert parse_since("1970-01-02") == 86_400.0
    assert parse_since(None) is None
    with pytest.raises(click.BadParameter, match="30m, 2h, 7d"):
        parse_since("yesterday")
