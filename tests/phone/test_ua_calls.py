"""User agent to user agent over loopback: answer, reject, cancel, hang up from either
side, audio both ways checked by cross-correlation, DTMF, hold and resume."""

from __future__ import annotations

import asyncio

import pytest
from ua_helpers import agent, chirp, on_clock, uri_of, wait_for

from sipline.media.audio import ArraySink, cross_correlate
from sipline.phone import (
    Call,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallHeld,
    CallProgressed,
    CallResumed,
    CallState,
    DtmfReceived,
    EndedBy,
    UserAgentError,
)
from sipline.sdp import Direction
from sipline.testing import FakeClock


async def test_call_with_audio_both_ways_then_caller_hangs_up() -> None:
    heard_by_bob, heard_by_alice = ArraySink(), ArraySink()
    to_alice = chirp(1.2, f0=900, rate=-200)

    async def answer(call: Call) -> None:
        await call.answer(play=to_alice, record=heard_by_bob)

    async with agent("alice") as alice, agent("bob", on_call=answer) as bob:
        call = await alice.call(uri_of(bob), record=heard_by_alice)
        await asyncio.wait_for(call.answered, 5)
        assert call.state is CallState.ANSWERED and call.media.codec == "PCMU"
        to_bob = chirp(1.2)
        await asyncio.wait_for(call.play(to_bob), 5)
        await asyncio.sleep(0.3)
        (theirs,) = bob.calls
        assert theirs.state is CallState.ANSWERED and not theirs.outgoing
        stats = call.stats()
        assert stats.packets_sent > 50 and stats.packets_received > 50 and stats.packets_lost == 0
        await call.hangup()
        ended = await asyncio.wait_for(theirs.ended, 5)
        assert ended.by is EndedBy.REMOTE
        assert call.end_reason is not None and call.end_reason.by is EndedBy.LOCAL
        assert alice.calls == [] and bob.calls == []
    assert cross_correlate(to_bob, heard_by_bob.samples()).peak > 0.95
    assert cross_correlate(to_alice, heard_by_alice.samples()).peak > 0.95
    kinds = [type(e) for e in call.history]
    assert CallProgressed in kinds and kinds[-2:] == [CallAnswered, CallEnded]
    seen = [e async for e in call.events()]
    assert seen == call.history


async def test_callee_hangs_up_and_both_calls_end() -> None:
    async with agent("alice") as alice, agent("bob", auto_answer=True) as bob:
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        (theirs,) = bob.calls
        await theirs.hangup()
        ended = await asyncio.wait_for(call.ended, 5)
        assert ended.by is EndedBy.REMOTE and ended.reason == "the other side hung up"


async def test_busy_callee_rejects_and_the_caller_hears_486() -> None:
    async def busy(call: Call) -> None:
        await call.reject(486)

    async with agent("alice") as alice, agent("bob", on_call=busy) as bob:
        call = await alice.call(uri_of(bob))
        with pytest.raises(CallFailed) as failed:
            await asyncio.wait_for(call.answered, 5)
        assert failed.value.status == 486
        ended = await asyncio.wait_for(call.ended, 5)
        assert ended.status == 486 and ended.by is EndedBy.REMOTE


async def test_caller_cancels_while_it_rings() -> None:
    async with agent("alice") as alice, agent("bob") as bob:
        call = await alice.call(uri_of(bob))
        theirs = await bob.next_call(5)
        await wait_for(lambda: call.state is CallState.RINGING)
        assert theirs.state is CallState.INCOMING
        await call.hangup()
        assert (await asyncio.wait_for(call.ended, 5)).status == 487
        ended = await asyncio.wait_for(theirs.ended, 5)
        assert ended.reason == "cancelled by the caller" and ended.by is EndedBy.REMOTE
        with pytest.raises(CallFailed):
            call.answered.result()
        with pytest.raises(UserAgentError):
            await theirs.answer()


async def test_dtmf_by_rtp_and_by_info() -> None:
    async with agent("alice") as alice, agent("bob", auto_answer=True) as bob:
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        (theirs,) = bob.calls
        await call.send_dtmf("12#", duration_ms=60)
        await call.send_dtmf("*9", method="info")

        def digits() -> list[tuple[str, str]]:
            return [(e.digit, e.method) for e in theirs.history if isinstance(e, DtmfReceived)]

        await wait_for(lambda: len(digits()) == 5)
        assert sorted(digits()) == sorted(
            [("1", "rtp"), ("2", "rtp"), ("#", "rtp"), ("*", "info"), ("9", "info")]
        )
        with pytest.raises(ValueError):
            await call.send_dtmf("1", method="smoke")
        await call.hangup()


async def test_hold_and_resume_change_who_sends() -> None:
    async with agent("alice") as alice, agent("bob", auto_answer=True) as bob:
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        (theirs,) = bob.calls
        await wait_for(lambda: call.stats().packets_received > 5)
        assert await call.hold()
        assert call.media.direction is Direction.SENDONLY
        assert theirs.media.direction is Direction.RECVONLY and theirs.media.remote_hold
        await asyncio.sleep(0.15)
        before = call.stats().packets_received
        await asyncio.sleep(0.4)
        assert call.stats().packets_received <= before + 1  # bob went quiet
        assert await call.resume()
        assert theirs.media.direction is Direction.SENDRECV
        await wait_for(lambda: call.stats().packets_received > before + 10)
        assert any(isinstance(e, CallHeld) and e.by_remote for e in theirs.history)
        assert any(isinstance(e, CallResumed) and e.by_remote for e in theirs.history)
        assert await call.hold(inactive=True)
        assert theirs.media.direction is Direction.INACTIVE
        await call.hangup()


async def test_both_sides_reinvite_at_once_and_both_succeed() -> None:
    """§14.1 glare: one re-INVITE meets the other, 491, a wait, a retry."""
    clock = FakeClock()
    async with (
        agent("alice", clock=clock) as alice,
        agent("bob", auto_answer=True, clock=clock) as bob,
    ):
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        (theirs,) = bob.calls
        # Each waits on the clock before trying again: 2.1-4 s for the Call-ID's owner.
        results = await on_clock(clock, asyncio.gather(call.hold(), theirs.hold()), limit_s=20)
        assert results == [True, True]
        assert clock.now >= 2.1  # the caller (the Call-ID's owner) waited 2.1-4 s
        assert call.media.direction is Direction.INACTIVE  # both hold: nobody sends
        await call.hangup()


async def test_several_calls_at_once_on_one_agent() -> None:
    async with agent("alice") as alice, agent("bob", auto_answer=True) as bob:
        calls = [await alice.call(uri_of(bob)) for _ in range(3)]
        await asyncio.wait_for(asyncio.gather(*(c.answered for c in calls)), 5)
        assert len(alice.calls) == 3 and len(bob.calls) == 3
        assert len({c.media.session.local_port for c in calls}) == 3
        await calls[1].hangup()
        await wait_for(lambda: len(bob.calls) == 2)
        assert all(c.state is CallState.ANSWERED for c in (calls[0], calls[2]))
    for c in calls:
        assert c.state is CallState.ENDED  # closing the agent hung the rest up


async def test_a_call_over_tcp() -> None:
    async with (
        agent("alice", transport="tcp") as alice,
        agent("bob", transport="tcp", auto_answer=True) as bob,
    ):
        port = bob.endpoint.local_address("TCP").port
        call = await alice.call(f"sip:bob@127.0.0.1:{port};transport=tcp")
        await asyncio.wait_for(call.answered, 5)
        assert alice.contact().uri_text.endswith(";transport=tcp")
        assert call.dialog is not None and "transport=tcp" in str(call.dialog.remote_target)
        await call.hangup()
        await wait_for(lambda: not bob.calls)
