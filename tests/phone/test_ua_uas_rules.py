"""The callee side's protocol rules, driven from a bare endpoint: OPTIONS, 481 for
unknown dialogs (§12.2.2), 420 (§8.2.2.3), 400/488 for bad offers, merged requests
(§8.2.2.2), an INVITE without an offer (§13.3.1), and the 2xx retransmitted until the
ACK comes, or the call ended when it never does (§13.3.1.4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ua_helpers import FAST, HOST, agent, on_clock, run_until, wait_for

from sipline.core.builders import build_request
from sipline.core.dialog import Dialog
from sipline.core.message import Request, Response
from sipline.core.uri import parse_uri
from sipline.core.views import NameAddr
from sipline.phone import CallState, UserAgent
from sipline.runtime.endpoint import Endpoint, EndpointConfig
from sipline.sdp import parse, serialize
from sipline.testing import FakeClock, advance
from sipline.transport import Target

OFFER = (
    "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bob(clock: FakeClock) -> AsyncIterator[UserAgent]:
    ua = agent("bob", auto_answer=True, clock=clock)
    await ua.start()
    yield ua
    await on_clock(clock, ua.close())  # its BYEs may go to a peer that has gone


@pytest.fixture
async def raw(clock: FakeClock) -> AsyncIterator[Endpoint]:
    endpoint = Endpoint(EndpointConfig(timers=FAST), clock=clock)
    await endpoint.bind("UDP", HOST, 0)
    yield endpoint
    await endpoint.close()


def _target(ua: UserAgent) -> Target:
    return Target("UDP", HOST, ua.endpoint.local_address("UDP").port)


def _request(
    raw: Endpoint,
    ua: UserAgent,
    method: str = "INVITE",
    *,
    body: bytes = b"",
    to_tag: str | None = None,
    call_id: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> Request:
    return build_request(
        method,
        parse_uri(f"sip:bob@{HOST}:{_target(ua).port}"),
        from_=NameAddr.of("sip:raw@127.0.0.1", tag="rawtag"),
        to=NameAddr.of("sip:bob@example.com", **({"tag": to_tag} if to_tag else {})),
        call_id=call_id or raw.new_call_id(),
        cseq=1,
        via=[],
        contact=NameAddr.of(raw.local_uri()),
        body=body,
        content_type="application/sdp" if body else None,
        extra=extra,
    )


async def test_options_gets_what_we_support(bob: UserAgent, raw: Endpoint) -> None:
    response = await raw.request(_request(raw, bob, "OPTIONS"), _target(bob))
    assert response.status == 200
    assert "INVITE" in (response.headers.get("allow") or "")
    assert response.headers.get("accept") == "application/sdp"


async def test_requests_for_unknown_dialogs_get_481(bob: UserAgent, raw: Endpoint) -> None:
    for method in ("BYE", "INFO"):
        response = await raw.request(_request(raw, bob, method, to_tag="nosuch"), _target(bob))
        assert response.status == 481
    response = await raw.request(_request(raw, bob, "BYE"), _target(bob))
    assert response.status == 481  # BYE outside any dialog
    response = await raw.request(
        _request(raw, bob, "PUBLISH"), _target(bob)
    )  # MESSAGE is supported now
    assert response.status == 405 and "REFER" in (response.headers.get("allow") or "")


async def test_unknown_required_extension_gets_420(bob: UserAgent, raw: Endpoint) -> None:
    request = _request(raw, bob, extra=[("Require", "100rel, foo")])
    response = await raw.request(request, _target(bob))
    assert response.status == 420
    assert response.headers.get("unsupported") == "100rel, foo"


async def test_bad_offers_get_400_and_488(bob: UserAgent, raw: Endpoint) -> None:
    garbage = await raw.request(_request(raw, bob, body=b"v=0\r\nnonsense\r\n"), _target(bob))
    assert garbage.status == 400
    g729 = OFFER.format(port=40000, formats="18").encode()
    response = await raw.request(_request(raw, bob, body=g729), _target(bob))
    assert response.status == 488
    assert bob.calls == []


async def test_a_merged_request_gets_482(bob: UserAgent, raw: Endpoint) -> None:
    bob.config.auto_answer = False
    offer = OFFER.format(port=40000, formats="0").encode()
    first = _request(raw, bob, body=offer, call_id="merged-1")
    raw.send_request(first, _target(bob))
    await wait_for(lambda: len(bob.calls) == 1)
    second = _request(raw, bob, body=offer, call_id="merged-1")  # same tags and CSeq
    response = await raw.request(second, _target(bob))
    assert response.status == 482


async def test_offer_in_the_2xx_answered_in_the_ack(bob: UserAgent, raw: Endpoint) -> None:
    invite = _request(raw, bob)
    ct = raw.send_request(invite, _target(bob))
    ok = await asyncio.wait_for(ct.final, 5)
    assert ok.status == 200 and ok.content_type == "application/sdp"
    offer = parse(ok.body)
    (call,) = bob.calls
    assert call.state is CallState.ANSWERED
    answer = parse(OFFER.format(port=40002, formats="0 101"))
    answer.origin = offer.origin  # any o= will do for the answer's check
    answer.origin.username = "raw"
    dialog = Dialog.as_uac(invite, ok)
    ack = dialog.create_ack(invite.cseq.seq, body=serialize(answer), content_type="application/sdp")
    ack.headers.add("Via", raw.via_value(_target(bob), raw.new_branch()), first=True)
    raw.send_stateless(ack, _target(bob))
    await wait_for(lambda: call.media.session.remote == ("127.0.0.1", 40002))
    assert call.media.codec == "PCMU"


async def test_2xx_is_retransmitted_until_the_ack(
    bob: UserAgent, raw: Endpoint, clock: FakeClock
) -> None:
    seen: list[Response] = []
    offer = OFFER.format(port=40004, formats="0").encode()
    invite = _request(raw, bob, body=offer)
    ct = raw.send_request(invite, _target(bob), on_response=seen.append)
    ok = await asyncio.wait_for(ct.final, 5)
    await advance(clock, 0.5)  # T1 = 50 ms: retransmissions at 50, 150 and 350 ms
    retransmitted = sum(1 for r in seen if r.status == 200) - 1
    assert retransmitted == 3
    dialog = Dialog.as_uac(invite, ok)
    ack = dialog.create_ack(invite.cseq.seq)
    ack.headers.add("Via", raw.via_value(_target(bob), raw.new_branch()), first=True)
    raw.send_stateless(ack, _target(bob))
    await wait_for(lambda: not bob.calls[0].session.answers.pending)
    count = len(seen)
    await advance(clock, 3.5)  # past 64*T1
    assert len(seen) == count  # the ACK stopped them
    assert bob.calls[0].state is CallState.ANSWERED


async def test_no_ack_ends_the_call(bob: UserAgent, raw: Endpoint, clock: FakeClock) -> None:
    offer = OFFER.format(port=40006, formats="0").encode()
    ct = raw.send_request(_request(raw, bob, body=offer), _target(bob))
    assert (await asyncio.wait_for(ct.final, 5)).status == 200
    (call,) = bob.calls
    await advance(clock, 3.1)
    assert call.is_active  # 64 * T1 = 3.2 s
    await run_until(clock, call.ended.done, limit_s=5)
    ended = call.ended.result()
    assert ended.reason == "no ACK for our 2xx" and ended.status == 408


async def test_cancel_after_the_answer_changes_nothing(
    bob: UserAgent, raw: Endpoint, clock: FakeClock
) -> None:
    """§9.2: the CANCEL gets its 200, the call stays up."""
    offer = OFFER.format(port=40008, formats="0").encode()
    invite = _request(raw, bob, body=offer)
    ct = raw.send_request(invite, _target(bob))
    ok = await asyncio.wait_for(ct.final, 5)
    assert ok.status == 200
    cancel = build_request(
        "CANCEL",
        invite.uri,
        from_=invite.from_,
        to=invite.to,
        call_id=invite.call_id,
        cseq=invite.cseq.seq,
        via=str(invite.top_via),  # the INVITE's branch (§9.1)
    )
    answered = await asyncio.wait_for(
        raw.send_request(cancel, _target(bob), add_via=False).final, 5
    )
    assert answered.status == 200
    await advance(clock, 0.2)
    (call,) = bob.calls
    assert call.state is CallState.ANSWERED
