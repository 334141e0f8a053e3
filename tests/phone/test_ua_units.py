"""The pure parts of the user agent: RFC 4028 negotiation and deadlines with explicit
numbers, the digest client against the core verifier, sipfrag, addresses."""

from __future__ import annotations

import pytest

from sipline.core.auth import DigestVerifier, ha1, parse_credentials
from sipline.core.auth_header import Credentials
from sipline.core.builders import build_request, build_response
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.core.uri import parse_uri
from sipline.core.views import NameAddr
from sipline.phone.config import parse_aor, parse_hostport
from sipline.phone.credentials import DigestClient
from sipline.phone.media import MediaOptions
from sipline.phone.session_timer import (
    SessionTimer,
    SessionTimerPolicy,
    parse_min_se,
    parse_session_expires,
    uac_request_headers,
    uac_timer_from_response,
    uas_decide,
)
from sipline.phone.transfer import parse_sipfrag_status
from sipline.testing import SeededEntropy


def _invite(extra: list[tuple[str, str]]) -> Request:
    return build_request(
        "INVITE",
        parse_uri("sip:bob@example.com"),
        from_=NameAddr.of("sip:alice@example.com", tag="a"),
        to=NameAddr.of("sip:bob@example.com"),
        call_id="c1",
        cseq=1,
        via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx",
        extra=extra,
    )


# -- RFC 4028 -------------------------------------------------------------------------------
def test_deadlines_follow_section_10() -> None:
    t = SessionTimer(1800, "uac", True)
    assert t.refresh_after() == 900 and t.expire_after() == 1800 - 32
    short = SessionTimer(90, "uas", False)
    assert short.expire_after() == 60  # a third of 90 is less than 32


def test_session_expires_and_min_se_parse_or_raise() -> None:
    assert parse_session_expires("1800;refresher=UAS") == (1800, "uas")
    assert parse_session_expires("90") == (90, None)
    assert parse_min_se("90;x=1") == 90
    for bad in ("abc", "90;refresher=proxy", "12345678901"):
        with pytest.raises(RemoteProtocolError):
            parse_session_expires(bad)
    with pytest.raises(RemoteProtocolError):
        parse_min_se("x")


def test_uac_headers_and_the_2xx_deciding() -> None:
    policy = SessionTimerPolicy(expires_s=1800, min_se_s=90)
    assert uac_request_headers(policy) == [("Session-Expires", "1800"), ("Min-SE", "90")]
    assert uac_request_headers(policy, 60, refresher="uac")[0] == (
        "Session-Expires",
        "90;refresher=uac",
    )
    assert uac_request_headers(SessionTimerPolicy(expires_s=None)) == []
    inv = _invite([])
    ok = build_response(
        inv, 200, extra=[("Session-Expires", "600;refresher=uas"), ("Require", "timer")]
    )
    assert uac_timer_from_response(ok) == SessionTimer(600, "uas", False)
    # A proxy asked for timers the UAS knows nothing of: we refresh (§7.2).
    proxied = build_response(inv, 200, extra=[("Session-Expires", "600;refresher=uas")])
    assert uac_timer_from_response(proxied) == SessionTimer(600, "uac", True)
    assert uac_timer_from_response(build_response(inv, 200)) is None


def test_uas_accepts_lowers_rejects_or_starts_a_timer() -> None:
    policy = SessionTimerPolicy(expires_s=1800, min_se_s=90)
    supported = ("Supported", "timer")
    d = uas_decide(_invite([supported, ("Session-Expires", "3600")]), policy)
    assert d.timer == SessionTimer(1800, "uac", False)  # lowered to our maximum
    assert ("Require", "timer") in d.headers
    d = uas_decide(_invite([supported, ("Session-Expires", "60")]), policy)
    assert d.reject_min_se == 90 and d.timer is None  # 422
    d = uas_decide(_invite([("Session-Expires", "60")]), policy)
    assert d.timer == SessionTimer(90, "uas", True)  # no support: raise it, we refresh
    assert ("Require", "timer") not in d.headers
    d = uas_decide(_invite([supported, ("Session-Expires", "120;refresher=uas")]), policy)
    assert d.timer == SessionTimer(120, "uas", True)
    d = uas_decide(_invite([supported]), policy)
    assert d.timer == SessionTimer(1800, "uac", False)  # we start one; the UAC refreshes
    assert uas_decide(_invite([]), policy).timer is None
    assert uas_decide(_invite([supported]), SessionTimerPolicy(expires_s=None)).timer is None


# -- digest ------------------------------------------------------------------------------------
def _verifier() -> DigestVerifier:
    return DigestVerifier(
        realm="example.com",
        secret=b"k" * 20,
        entropy=SeededEntropy(1),
        ha1_lookup=lambda u, r, a: ha1(u, r, "pw", a),
    )


def _challenge(
    request: Request, status: int, verifier: DigestVerifier, stale: bool = False
) -> object:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return build_response(
        request,
        status,
        extra=[(name, c.serialize()) for c in verifier.challenges(now=1.0, stale=stale)],
    )


def _verify(request: Request, verifier: DigestVerifier, header: str) -> bool:
    creds = parse_credentials(request.headers.get(header) or "")
    assert isinstance(creds, Credentials)
    return verifier.verify(creds, method=request.method, now=2.0).ok


def test_digest_client_answers_and_reuses_with_a_rising_nonce_count() -> None:
    verifier = _verifier()
    client = DigestClient("alice", "pw", entropy=SeededEntropy(2))
    req = _invite([])
    assert client.authorize(req, _challenge(req, 407, verifier))  # type: ignore[arg-type]
    assert _verify(req, verifier, "proxy-authorization")
    assert req.headers.get("authorization") is None
    nxt = _invite([])
    client.apply_cached(nxt)
    creds = parse_credentials(nxt.headers.get("proxy-authorization") or "")
    assert isinstance(creds, Credentials) and creds.nc == "00000002"
    assert _verify(nxt, verifier, "proxy-authorization")
    client.apply_cached(nxt, realms={"elsewhere"})  # nothing for that realm
    assert nxt.headers.count("proxy-authorization") == 1


def test_digest_client_gives_up_on_a_refused_fresh_answer_but_not_on_stale() -> None:
    verifier = _verifier()
    wrong = DigestClient("alice", "nope", entropy=SeededEntropy(3))
    req = _invite([])
    assert wrong.authorize(req, _challenge(req, 401, verifier))  # type: ignore[arg-type]
    assert not _verify(req, verifier, "authorization")
    assert not wrong.authorize(req, _challenge(req, 401, verifier))  # type: ignore[arg-type]
    stale = DigestClient("alice", "pw", entropy=SeededEntropy(4))
    req = _invite([])
    assert stale.authorize(req, _challenge(req, 401, verifier))  # type: ignore[arg-type]
    assert stale.authorize(req, _challenge(req, 401, verifier, stale=True))  # type: ignore[arg-type]
    no_challenge = build_response(req, 401)
    assert not stale.authorize(req, no_challenge)
    assert not stale.authorize(req, build_response(req, 403))
    stale.forget()


# -- small parsers -------------------------------------------------------------------------------
def test_sipfrag_status_lines() -> None:
    assert parse_sipfrag_status(b"SIP/2.0 200 OK\r\n") == (200, "OK")
    assert parse_sipfrag_status(b"SIP/2.0 100 Trying") == (100, "Trying")
    assert parse_sipfrag_status(b"SIP/2.0 603") == (603, "")
    assert parse_sipfrag_status(b"INVITE sip:x SIP/2.0") is None


def test_addresses_and_options() -> None:
    assert str(parse_aor("alice@example.com")) == "sip:alice@example.com"
    assert str(parse_aor("sips:bob@example.com:5061")) == "sips:bob@example.com:5061"
    for bad in ("example.com", "alice@", "tel:+123"):
        with pytest.raises(ValueError):
            parse_aor(bad)
    assert parse_hostport("127.0.0.1:5070") == ("127.0.0.1", 5070)
    assert parse_hostport("[::1]:5070") == ("::1", 5070)
    assert parse_hostport("sip.example.com") == ("sip.example.com", 5060)
    assert parse_hostport("::1") == ("::1", 5060)
    for bad in ("[::1", ":5060", "host:99999"):
        with pytest.raises(ValueError):
            parse_hostport(bad)
    with pytest.raises(ValueError, match="srtp"):
        MediaOptions(srtp="maybe")
    with pytest.raises(ValueError, match="codecs"):
        MediaOptions(codecs=())
