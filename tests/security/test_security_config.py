"""`[security]` and `[[trusted]]`: parsed, checked with errors naming the key; the
security log's file and its escaping."""

from __future__ import annotations

import logging
import re
from ipaddress import ip_network
from pathlib import Path

import pytest
from server_helpers import DOMAIN, USERS, ServerFactory, configured, server_target
from sipua import TestUA

from sipline.core.message import parse_message
from sipline.server.config import ConfigError, ServerConfig, load_config, parse_listen
from sipline.server.security.log import auth_failed
from sipline.server.security.relay import RelayPolicy, TrustedPeer
from sipline.server.sip_server import ServeError, SipServer


def test_security_keys_and_defaults() -> None:
    sec = ServerConfig().security
    assert (sec.max_auth_failures, sec.failure_window_s) == (10, 60.0)
    assert (sec.ban_s, sec.max_ban_s, sec.log_file) == (60.0, 3600.0, None)
    cfg = load_config(
        {
            "security": {
                "max_auth_failures": 5,
                "failure_window_s": 30,
                "ban_s": 10,
                "max_ban_s": 600,
                "internal_networks": ["10.0.0.0/8", "fd00::/8"],
                "log_file": "/tmp/x.log",
            },
            "trusted": [
                {"address": "192.0.2.10", "name": "carrier", "transport": "udp", "port": 5060},
                {"address": "198.51.100.0/24"},
            ],
        }
    )
    sec = cfg.security
    assert sec.max_auth_failures == 5 and sec.failure_window_s == 30.0
    assert sec.internal_networks == (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))
    assert sec.log_file == Path("/tmp/x.log")
    assert cfg.trusted == (
        TrustedPeer(ip_network("192.0.2.10/32"), "carrier", "UDP", 5060),
        TrustedPeer(ip_network("198.51.100.0/24")),
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"security": {"max_auth_failures": 0}}, "security.max_auth_failures: must be a positive"),
        ({"security": {"ban_s": 100, "max_ban_s": 50}}, "security.ban_s: larger than"),
        ({"security": {"internal_networks": ["10.0.0.0/33"]}}, "security.internal_networks: '10"),
        ({"security": {"internal_networks": "10.0.0.0/8"}}, "security.internal_networks: must"),
        ({"security": {"bans": 1}}, "security.bans: unknown key"),
        ({"trusted": {"address": "192.0.2.1"}}, "trusted: must be an array of tables"),
        ({"trusted": [{"name": "x"}]}, "trusted[0].address: missing"),
        ({"trusted": [{"address": "carrier.example"}]}, "trusted[0].address: 'carrier.example'"),
        ({"trusted": [{"address": "192.0.2.1", "port": 0}]}, "trusted[0].port: must be a number"),
        ({"trusted": [{"address": "192.0.2.1", "transport": "sctp"}]}, "trusted[0].transport"),
        ({"trusted": [{"address": "192.0.2.1", "via": "x"}]}, "trusted[0].via: unknown key"),
    ],
)
def test_bad_values_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(doc)


def test_relay_policy_addresses() -> None:
    policy = RelayPolicy(
        [TrustedPeer(ip_network("127.0.0.2/32"), port=5080)], [ip_network("10.0.0.0/8")]
    )
    forbidden = policy.forbidden_target
    assert forbidden("UDP", "127.0.0.1", 5060) and forbidden(None, "[::1]", None)
    assert forbidden("UDP", "::ffff:127.0.0.1", 5060)  # IPv4-mapped
    assert forbidden("UDP", "169.254.0.9", 5060) and forbidden("UDP", "fe80::1", 5060)
    assert forbidden("UDP", "10.9.9.9", 5060)
    assert not forbidden("UDP", "127.0.0.2", 5080)  # a trusted rule names it
    assert forbidden("UDP", "127.0.0.2", 5060)  # ... on that port only
    assert not forbidden("UDP", "192.0.2.1", 5060) and not forbidden("UDP", "example.com", None)


def test_log_fields_from_the_request_cannot_forge_a_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = (
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKx\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\n"
        b'CSeq: 1 REGISTER\r\nUser-Agent: evil" src=198.51.100.1:1 \\ \x7f\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    request = parse_message(raw)
    caplog.set_level(logging.WARNING, "sipline.security")
    auth_failed(("192.0.2.7", 5060), 'x"y\nz@example.com', request, "wrong-credentials")  # type: ignore[arg-type]
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        'auth-failed src=192.0.2.7:5060 user="x\\"y\\x0az@example.com" '
        'ua="evil\\" src=198.51.100.1:1 \\\\ \\x7f" reason=wrong-credentials'
    )


async def test_security_log_file(make_server: ServerFactory, tmp_path: Path) -> None:
    log = tmp_path / "security.log"
    server = await make_server(security_log_file=log)
    ua = await TestUA.start(server_target(server))
    try:
        done = await ua.register(f"alice@{DOMAIN}", "wrong")
        assert done.final.status == 401
        done = await ua.register(f"alice@{DOMAIN}", USERS["alice"])
        assert done.final.status == 200
    finally:
        await ua.close()
    await server.stop()
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} sipline\.security: auth-failed "
        r'src=127\.0\.0\.1:\d+ user="alice@example\.com" ua="" reason=wrong-credentials',
        lines[0],
    ), lines[0]


async def test_security_log_file_that_cannot_be_opened(tmp_path: Path) -> None:
    cfg = configured(
        listen=[parse_listen("udp:127.0.0.1:0")],
        domains=[DOMAIN],
        database=tmp_path / "s.db",
        security_log_file=tmp_path / "missing-dir" / "security.log",
    )
    server = SipServer(cfg)
    with pytest.raises(ServeError, match=r"cannot open security\.log_file .*: no such file"):
        await server.start()
