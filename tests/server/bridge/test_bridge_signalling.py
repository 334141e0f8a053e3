"""The media bridge's signalling through a real `SipServer` (SIP on loopback, no audio
awaited): calls of one kind pass untouched, a Chromium offer to a phone is rewritten
both ways, a cancelled or forgotten bridge is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bridge_sip import acked, answering, invite_request, register
from server_helpers import eventually, server_target
from service_calls import DOMAIN, add_users, loopback_config, running
from sipua import Dialog, Exchange, TestUA
from test_bridge_plan import BARESIP, CHROMIUM

from sipline.sdp import Direction
from sipline.server.bridge.plan import SdpKind, audio_direction, origin_version, sdp_kind
from sipline.server.bridge.webrtc import use_media_address
from sipline.server.sip_server import SipServer

ANSWER = BARESIP.replace(b"96 97 9 0 8 101", b"0 101")  # a phone's answer: PCMU


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    use_media_address(["127.0.0.1"])
    db = tmp_path / "sipline.db"
    add_users(db, ["alice", "bob"])
    async with running(loopback_config(db)) as srv:
        yield srv


async def started_ua(server: SipServer) -> AsyncIterator[TestUA]:
    ua = await TestUA.start(server_target(server))
    try:
        yield ua
    finally:
        await ua.close()


uas = pytest.fixture(started_ua, name="uas")
uac = pytest.fixture(started_ua, name="uac")


async def invite(uac: TestUA, body: bytes) -> tuple[Dialog, bytes]:
    exchange = await uac.send_authenticated(invite_request(uac, body), "alice", "alice-pw")
    assert exchange.final.status == 200
    return acked(uac, exchange), exchange.final.body


@pytest.mark.parametrize(
    ("offer", "webrtc_callee"),
    [(CHROMIUM, True), (BARESIP, False)],
    ids=["browser-to-browser", "phone-to-phone"],
)
async def test_calls_of_one_kind_pass_untouched(
    server: SipServer, uac: TestUA, uas: TestUA, offer: bytes, webrtc_callee: bool
) -> None:
    await register(uas, "bob", webrtc=webrtc_callee)
    answer = offer.replace(b"a=setup:actpass", b"a=setup:active")
    uas.on_invite = answering(answer)
    dialog, got = await invite(uac, offer)
    assert uas.requests("INVITE")[0].body == offer
    assert got == answer
    assert (await dialog.bye()).final.status == 200
    assert server.bridges is not None and server.bridges.opened == 0


async def test_a_chromium_offer_to_a_phone_is_anchored(
    server: SipServer, uac: TestUA, uas: TestUA
) -> None:
    await register(uas, "bob", webrtc=False)
    uas.on_invite = answering(ANSWER)
    dialog, got = await invite(uac, CHROMIUM)
    offered = uas.requests("INVITE")[0].body
    assert sdp_kind(offered) is SdpKind.PLAIN
    assert b"c=IN IP4 127.0.0.1" in offered and b"RTP/AVP" in offered
    assert b"opus/48000" in offered and b"PCMU/8000" in offered
    # The browser's answer: DTLS client (RFC 5763 §5), ICE on the server's address,
    # rtcp-mux, Opus.
    text = got.decode()
    assert sdp_kind(got) is SdpKind.WEBRTC
    assert "a=setup:active" in text and "a=fingerprint:sha-256 " in text
    assert "a=rtcp-mux" in text and "opus/48000/2" in text
    candidates = [ln for ln in text.splitlines() if ln.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in c for c in candidates)
    assert server.bridges is not None and len(server.bridges) == 1
    assert (await dialog.bye()).final.status == 200
    await eventually(lambda: server.bridges is not None and len(server.bridges) == 0)


async def test_a_phones_hold_reaches_the_browser_with_the_same_transport(
    server: SipServer, uac: TestUA, uas: TestUA
) -> None:
    await register(uas, "bob", webrtc=False)
    uas.on_invite = answering(ANSWER)
    dialog, got = await invite(uac, CHROMIUM)
    assert uas.requests("INVITE")
    # The browser holds the phone: its re-offer says sendonly; the phone is offered
    # sendonly, and its recvonly answer reaches the browser as our answer again.
    reoffer = CHROMIUM.replace(b"a=sendrecv", b"a=sendonly").replace(b" 2 IN IP4", b" 3 IN IP4")
    uas.on_invite = answering(ANSWER.replace(b"a=sendrecv", b"a=recvonly"))
    request = dialog._build("INVITE", dialog.invite.cseq.seq + 1)
    request.headers.add("Contact", f"<{uac.contact('alice')}>")
    request.set_body(reoffer, "application/sdp")
    exchange = await uac.send(request)
    assert exchange.final.status == 200
    to_phone = uas.requests("INVITE")[-1].body
    assert sdp_kind(to_phone) is SdpKind.PLAIN
    assert audio_direction(to_phone) is Direction.SENDONLY
    back = exchange.final.body
    assert audio_direction(back) is Direction.RECVONLY
    ufrag = [ln for ln in got.decode().splitlines() if ln.startswith("a=ice-ufrag")]
    assert ufrag and ufrag[0] in back.decode()  # the same ICE session: no restart
    assert (await dialog.bye()).final.status == 200


async def test_a_cancelled_call_closes_its_bridge(
    server: SipServer, uac: TestUA, uas: TestUA
) -> None:
    await register(uas, "bob", webrtc=False)
    uas.on_invite = lambda ua, st: ua.answer_invite(st, 180)  # rings until cancelled
    request = uac.build("INVITE", f"sip:bob@{DOMAIN}", from_="x@elsewhere.test", body=CHROMIUM)
    request.headers.set("To", f"<sip:bob@{DOMAIN}>")
    exchange = Exchange(request)
    ct = uac.ep.send_request(request, uac.server, on_response=exchange.responses.append)
    await eventually(lambda: 180 in exchange.statuses)
    assert server.bridges is not None and len(server.bridges) == 1
    ct.cancel()
    assert (await asyncio.wait_for(ct.final, 10)).status == 487
    await eventually(lambda: server.bridges is not None and len(server.bridges) == 0)


async def test_a_bridge_without_media_is_reaped(
    server: SipServer, uac: TestUA, uas: TestUA
) -> None:
    assert server.bridges is not None
    server.bridges.idle_s = 0.5  # nobody sends media here: no ICE peer, no RTP
    await register(uas, "bob", webrtc=False)
    uas.on_invite = answering(ANSWER)
    await invite(uac, CHROMIUM)  # and no BYE ever
    assert len(server.bridges) == 1
    await eventually(lambda: server.bridges is not None and len(server.bridges) == 0, 5)


async def test_a_refused_reoffer_leaves_the_session_as_it_was(
    server: SipServer, uac: TestUA, uas: TestUA
) -> None:
    await register(uas, "bob", webrtc=False)
    uas.on_invite = answering(ANSWER)
    dialog, _ = await invite(uac, CHROMIUM)
    first = uas.requests("INVITE")[0].body

    async def reoffer(cseq: int, direction: bytes) -> int:
        request = dialog._build("INVITE", cseq)
        request.headers.add("Contact", f"<{uac.contact('alice')}>")
        request.set_body(CHROMIUM.replace(b"a=sendrecv", b"a=" + direction), "application/sdp")
        return (await uac.send(request)).final.status

    uas.on_invite = lambda ua, st: st.respond(488)
    assert await reoffer(dialog.invite.cseq.seq + 1, b"sendonly") == 488
    refused = uas.requests("INVITE")[-1].body
    uas.on_invite = answering(ANSWER.replace(b"a=sendrecv", b"a=inactive"))
    assert await reoffer(dialog.invite.cseq.seq + 2, b"inactive") == 200
    again = uas.requests("INVITE")[-1].body
    # RFC 3264 §8: the refused offer never happened, so the next one has its version.
    assert origin_version(refused) == origin_version(again) == origin_version(first) + 1
    assert (await dialog.bye()).final.status == 200


async def test_past_the_limit_offers_pass_untouched(
    server: SipServer, uac: TestUA, uas: TestUA
) -> None:
    assert server.bridges is not None
    server.bridges.max_bridges = 0
    await register(uas, "bob", webrtc=False)
    uas.on_invite = answering(ANSWER)
    dialog, got = await invite(uac, CHROMIUM)
    assert uas.requests("INVITE")[0].body == CHROMIUM and got == ANSWER
    assert server.bridges.opened == 0 and not server.bridges.calls
    assert (await dialog.bye()).final.status == 200


async def solicit(dialog: Dialog, cseq: int, answer: bytes) -> bytes:
    """A re-INVITE without an offer (RFC 3261 §14.1); the ACK carries `answer` to the
    offer its 2xx brought, which is returned."""
    uac = dialog.ua
    request = dialog._build("INVITE", cseq)
    request.headers.add("Contact", f"<{uac.contact('alice')}>")
    exchange = await uac.send(request)
    assert exchange.final.status == 200
    ack = dialog._build("ACK", cseq)
    ack.set_body(answer, "application/sdp")
    ack.headers.add("Via", uac.ep.via_value(uac.server, uac.ep.new_branch()), first=True)
    uac.ep.send_stateless(ack, uac.server)
    return exchange.final.body


@pytest.mark.parametrize("browser_asks", [True, False], ids=["browser-asks", "phone-asks"])
async def test_a_reinvite_without_an_offer_gets_one_of_its_kind(
    server: SipServer, uac: TestUA, uas: TestUA, browser_asks: bool
) -> None:
    await register(uas, "bob", webrtc=not browser_asks)
    browser_answer = CHROMIUM.replace(b"a=setup:actpass", b"a=setup:active")
    callee_answer = ANSWER if browser_asks else browser_answer
    uas.on_invite = answering(callee_answer)
    dialog, first = await invite(uac, CHROMIUM if browser_asks else BARESIP)
    uas.on_invite = answering(callee_answer.replace(b" 2 IN IP4", b" 3 IN IP4"))
    ours = BARESIP.replace(b"96 97 9 0 8 101", b"0 101") if not browser_asks else browser_answer
    offer = await solicit(dialog, dialog.invite.cseq.seq + 1, ours)
    # The requester is offered its own kind; the other side got our offer of its kind.
    asked = SdpKind.WEBRTC if browser_asks else SdpKind.PLAIN
    other = SdpKind.PLAIN if browser_asks else SdpKind.WEBRTC
    assert sdp_kind(offer) is asked
    assert sdp_kind(uas.requests("INVITE")[-1].body) is other
    if browser_asks:  # the same ICE session: no restart
        ufrag = [ln for ln in first.decode().splitlines() if ln.startswith("a=ice-ufrag")]
        assert ufrag[0] in offer.decode()
    # The ACK's answer was the bridge's: the callee's ACK comes without SDP.
    await uas.wait_for(lambda: len(uas.acks) == 2)
    assert uas.acks[-1].body == b""
    assert server.bridges is not None
    [call] = server.bridges.calls.values()
    assert call.answered is not None and not call.answered.closed
    assert (await dialog.bye()).final.status == 200
