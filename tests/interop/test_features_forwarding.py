"""Call forwarding and find-me/follow-me end to end: a `SipServer` on loopback, SIPp
UAS peers that answer, ring forever or are busy, and a caller placing real calls."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from features_sip import DOMAIN, Phone, Running, SippUas, at, running_server

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

ALICE = f"sip:alice@{DOMAIN}"
TUESDAY_10 = at("2026-12-01 10:00 Europe/Berlin")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_server(tmp_path, wall=TUESDAY_10) as running:
        yield running


@pytest.fixture
async def phone() -> AsyncIterator[Phone]:
    p = await Phone().start()
    yield p
    await p.close()


async def uas(scenario: str, tmp_path: Path) -> SippUas:
    return await SippUas(scenario, tmp_path).start()


async def register(server: Running, phone: Phone, user: str, contact: str) -> None:
    response = await phone.register(server.target, user, contact)
    assert response.status == 200, response


async def test_forward_on_busy_reaches_bob_with_history(
    server: Running, phone: Phone, tmp_path: Path
) -> None:
    busy, answer = await uas("uas_busy", tmp_path), await uas("uas_answer", tmp_path)
    try:
        await register(server, phone, "alice", busy.contact("alice"))
        await register(server, phone, "bob", answer.contact("bob"))
        await server.set_rules(
            "alice@example.com", json.dumps({"forward": {"busy": "bob@example.com"}})
        )
        call = phone.invite(server.target, ALICE)
        ok = await call.final()
        assert ok.status == 200, ok
        assert (await phone.hang_up(call, ok)).status == 200
        assert await busy.finish() == 0
        assert await answer.finish() == 0
    finally:
        await busy.stop()
        await answer.stop()
    (invite,) = answer.received("INVITE")
    assert invite.uri_text == answer.contact("bob")
    assert invite.to.uri.aor == "alice@example.com"  # To is never rewritten (§16.6)
    history = invite.headers.get_all("history-info")
    assert history and "<sip:bob@example.com;cause=486>;index=1.1;mp=1" in ", ".join(history)
    assert "cause%3D486" in history[0]
    assert invite.headers.get("diversion") == (
        "<sip:alice@example.com>;reason=user-busy;counter=1;privacy=off"
    )


async def test_forward_on_no_answer_cancels_then_rings_the_next(
    server: Running, phone: Phone, tmp_path: Path
) -> None:
    ring, answer = await uas("uas_ring", tmp_path), await uas("uas_answer", tmp_path)
    try:
        await register(server, phone, "alice", ring.contact("alice"))
        await server.set_rules(
            "alice@example.com",
            json.dumps({"forward": {"no_answer": answer.contact("voicemail"), "no_answer_s": 1}}),
        )
        start = time.monotonic()
        call = phone.invite(server.target, ALICE)
        ok = await call.final()
        elapsed = time.monotonic() - start
        assert ok.status == 200, ok
        assert elapsed >= 0.9, elapsed  # the first device rang for its second
        assert any(p.status == 180 for p in call.provisional)
        await phone.hang_up(call, ok)
        assert await ring.finish() == 0  # it saw the CANCEL and answered 487
        assert await answer.finish() == 0
    finally:
        await ring.stop()
        await answer.stop()
    assert len(ring.received("CANCEL")) == 1
    (invite,) = answer.received("INVITE")
    assert "reason=no-answer" in (invite.headers.get("diversion") or "")


async def test_unavailable_and_unconditional_forwards(
    server: Running, phone: Phone, tmp_path: Path
) -> None:
    answer = await uas("uas_answer", tmp_path)
    try:
        # Bob has no device: his calls go to carol, who forwards everything to the UAS.
        await server.set_rules(
            "bob@example.com", json.dumps({"forward": {"unavailable": "carol@example.com"}})
        )
        await server.set_rules(
            "carol@example.com", json.dumps({"forward": {"always": answer.contact("desk")}})
        )
        call = phone.invite(server.target, f"sip:bob@{DOMAIN}")
        ok = await call.final()
        assert ok.status == 200, ok
        await phone.hang_up(call, ok)
        assert await answer.finish() == 0
    finally:
        await answer.stop()
    (invite,) = answer.received("INVITE")
    diversions = invite.headers.get_all("diversion")
    assert diversions == [
        "<sip:carol@example.com>;reason=unconditional;counter=1;privacy=off",
        "<sip:bob@example.com>;reason=unavailable;counter=1;privacy=off",
    ]


async def test_find_me_steps_ring_one_after_the_other(
    server: Running, phone: Phone, tmp_path: Path
) -> None:
    desk, mobile = await uas("uas_ring", tmp_path), await uas("uas_answer", tmp_path)
    try:
        await register(server, phone, "alice", desk.contact("alice"))
        await server.set_rules(
            "alice@example.com",
            json.dumps(
                {
                    "ring": [
                        {"targets": ["devices"], "timeout_s": 1},
                        {"targets": [mobile.contact("alice-mobile")], "timeout_s": 5},
                    ]
                }
            ),
        )
        call = phone.invite(server.target, ALICE)
        ok = await call.final()
        assert ok.status == 200, ok
        await phone.hang_up(call, ok)
        assert await desk.finish() == 0
        assert await mobile.finish() == 0
    finally:
        await desk.stop()
        await mobile.stop()
    assert len(desk.received("INVITE")) == 1 and len(desk.received("CANCEL")) == 1


async def test_dnd_and_blocklist(server: Running, phone: Phone) -> None:
    await register(server, phone, "alice", f"sip:alice@127.0.0.1:{phone.port + 1}")
    await server.set_rules("alice@example.com", json.dumps({"dnd": True}))
    busy = await phone.invite(server.target, ALICE).final()
    assert (busy.status, busy.reason) == (486, "Busy Here (do not disturb)")
    await server.set_rules("alice@example.com", json.dumps({"block": ["dave@127.0.0.1"]}))
    declined = await phone.invite(server.target, ALICE).final()
    assert declined.status == 603
    # Another caller is not blocked; with no one listening the call fails the usual way.


async def test_a_step_target_that_never_answers_is_given_up_at_the_timeout(
    server: Running, phone: Phone, tmp_path: Path
) -> None:
    import socket  # noqa: PLC0415

    mobile = await uas("uas_answer", tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        dead = f"sip:alice@127.0.0.1:{silent.getsockname()[1]}"
        try:
            await server.set_rules(
                "alice@example.com",
                json.dumps(
                    {
                        "ring": [
                            {"targets": [dead], "timeout_s": 1},
                            {"targets": [mobile.contact("m")]},
                        ]
                    }
                ),
            )
            start = time.monotonic()
            call = phone.invite(server.target, ALICE)
            ok = await call.final()
            assert ok.status == 200 and time.monotonic() - start >= 0.9
            await phone.hang_up(call, ok)
            assert await mobile.finish() == 0
        finally:
            await mobile.stop()
        assert silent.recv(65535).startswith(b"INVITE ")  # it was tried first


async def test_caller_cancel_during_a_step_cancels_its_branches(
    server: Running, phone: Phone, tmp_path: Path
) -> None:
    ring = await uas("uas_ring", tmp_path)
    try:
        await register(server, phone, "alice", ring.contact("alice"))
        await server.set_rules(
            "alice@example.com",
            json.dumps({"forward": {"no_answer": "bob@example.com", "no_answer_s": 10}}),
        )
        call = phone.invite(server.target, ALICE)
        for _ in range(100):
            if call.provisional:
                break
            await asyncio.sleep(0.05)
        assert any(p.status == 180 for p in call.provisional)
        call.ct.cancel()
        final = await call.final()
        assert final.status == 487
        assert await ring.finish() == 0
    finally:
        await ring.stop()
    assert len(ring.received("CANCEL")) == 1
