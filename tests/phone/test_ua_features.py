"""Session timers (RFC 4028) including dead calls, 422, blind transfer (RFC 3515),
redirects (§8.1.3.4) and digest challenges (§22.2) answered on the way."""

from __future__ import annotations

import asyncio

from ua_helpers import Challenger, TestServer, agent, on_clock, run_until, uri_of, wait_for

from sipline.phone import (
    CallTransferred,
    EndedBy,
    SessionRefreshed,
    SessionTimerPolicy,
    TransferProgressed,
    TransferRequested,
    UserAgent,
)
from sipline.runtime.endpoint import ServerTransaction
from sipline.testing import FakeClock, advance

SHORT = SessionTimerPolicy(expires_s=2, min_se_s=1)  # below RFC 4028's 90 s: tests only


async def _crash(ua: UserAgent) -> None:
    """Stop an agent dead: no BYE, no more packets, as if its host vanished."""
    for call in ua.calls:
        call.session.close()  # its timers: no refresh, no 2xx retransmission
        await call.media.close()
    await ua.endpoint.close()


async def test_caller_refreshes_the_session_and_the_callee_sees_it() -> None:
    clock = FakeClock()
    async with (
        agent("alice", session_timer=SHORT, clock=clock) as alice,
        agent("bob", auto_answer=True, session_timer=SHORT, clock=clock) as bob,
    ):
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        assert call.session_timer is not None and call.session_timer.we_refresh
        assert call.session_timer.interval_s == 2
        (theirs,) = bob.calls
        assert theirs.session_timer is not None and not theirs.session_timer.we_refresh
        await advance(clock, 2.4)  # a refresh at 1 s and at 2 s
        refreshed = [e for e in call.history if isinstance(e, SessionRefreshed)]
        assert len(refreshed) == 2
        assert any(isinstance(e, SessionRefreshed) and e.by_remote for e in theirs.history)
        assert theirs.is_active and call.is_active  # refreshed in time: nobody gave up
        await call.hangup()


async def test_callee_ends_a_call_whose_refresher_died() -> None:
    clock = FakeClock()
    alice = agent("alice", session_timer=SHORT, clock=clock)
    async with agent("bob", auto_answer=True, session_timer=SHORT, clock=clock) as bob:
        await alice.start()
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        (theirs,) = bob.calls
        await _crash(alice)
        await advance(clock, 1.3)
        assert theirs.is_active  # 2 - min(32, 2/3) s: not yet
        await run_until(clock, theirs.ended.done, limit_s=5)
        ended = theirs.ended.result()
        assert ended.by is EndedBy.NETWORK and "session expired" in ended.reason
    await on_clock(clock, alice.close())


async def test_refresher_ends_the_call_when_the_peer_is_gone() -> None:
    clock = FakeClock()
    bob = agent("bob", auto_answer=True, session_timer=SHORT, clock=clock)
    async with agent("alice", session_timer=SHORT, clock=clock) as alice:
        await bob.start()
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        await _crash(bob)
        # The refresh at 1 s gets no answer: Timer B (64*T1 = 3.2 s) ends it with 408.
        await run_until(clock, call.ended.done, limit_s=10)
        ended = call.ended.result()
        assert ended.by is EndedBy.NETWORK and ended.status == 408
    await on_clock(clock, bob.close())


async def test_422_makes_the_caller_ask_for_the_minimum() -> None:
    strict = SessionTimerPolicy(expires_s=10, min_se_s=5)
    async with (
        agent("alice", session_timer=SHORT) as alice,
        agent("bob", auto_answer=True, session_timer=strict) as bob,
    ):
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        assert call.session_timer is not None and call.session_timer.interval_s == 5
        await call.hangup()


async def test_no_timer_when_neither_side_wants_one() -> None:
    off = SessionTimerPolicy(expires_s=None)
    async with (
        agent("alice", session_timer=off) as alice,
        agent("bob", auto_answer=True, session_timer=off) as bob,
    ):
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        assert call.session_timer is None and bob.calls[0].session_timer is None
        await call.hangup()


async def test_blind_transfer_moves_the_caller_to_a_third_party() -> None:
    async with (
        agent("alice") as alice,
        agent("bob", auto_answer=True) as bob,
        agent("carol", auto_answer=True) as carol,
    ):
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        (bobs,) = bob.calls
        assert await asyncio.wait_for(bobs.transfer(uri_of(carol)), 10)
        assert (await asyncio.wait_for(call.ended, 5)).by is EndedBy.REMOTE
        (carols,) = carol.calls
        assert carols.remote.uri_text.startswith("sip:alice@")
        new = [e.new_call for e in call.history if isinstance(e, CallTransferred)]
        assert len(new) == 1 and new[0].is_active
        assert any(isinstance(e, TransferRequested) and e.accepted for e in call.history)
        progress = [e.status for e in bobs.history if isinstance(e, TransferProgressed)]
        assert progress[0] == 100 and progress[-1] == 200
        await new[0].hangup()


async def test_a_refused_transfer_leaves_the_call_up() -> None:
    async with (
        agent("alice", on_transfer=lambda call, target: False) as alice,
        agent("bob", auto_answer=True) as bob,
    ):
        call = await alice.call(uri_of(bob))
        await asyncio.wait_for(call.answered, 5)
        assert not await bob.calls[0].transfer("sip:nobody@127.0.0.1:9")
        assert call.is_active
        await call.hangup()


class _Redirector(TestServer):
    """A redirect server that wants proxy credentials first (407, then 302)."""

    def __init__(self, to: str) -> None:
        super().__init__()
        self.to = to
        self.auth = Challenger("example.com", {"alice": "wonderland"})

    def handle(self, st: ServerTransaction) -> None:
        if st.request.method != "INVITE":
            st.respond(200)
        elif self.auth.check(st):
            st.respond(
                302,
                extra=[("Contact", f"<{self.to}>;q=0.5"), ("Contact", "<sip:x@127.0.0.1:9>;q=0.1")],
            )


async def test_redirect_after_a_digest_challenge_reaches_the_callee() -> None:
    async with agent("bob", auto_answer=True) as bob:
        redirector = await _Redirector(uri_of(bob)).start()
        try:
            async with agent("alice", password="wonderland") as alice:
                call = await alice.call(f"sip:bob@{redirector.hostport}")
                await asyncio.wait_for(call.answered, 5)
                invites = [r for r in redirector.requests if r.method == "INVITE"]
                assert len(invites) == 2 and invites[1].headers.get("proxy-authorization")
                assert invites[1].cseq.seq == invites[0].cseq.seq + 1
                assert invites[1].call_id == invites[0].call_id
                await wait_for(lambda: len(bob.calls) == 1)
                assert bob.calls[0].call_id == call.call_id  # same Call-ID after recursion
                await call.hangup()
        finally:
            await redirector.close()


async def test_a_wrong_password_is_not_retried_forever() -> None:
    async with agent("bob", auto_answer=True) as bob:
        redirector = await _Redirector(uri_of(bob)).start()
        try:
            async with agent("alice", password="guess") as alice:
                call = await alice.call(f"sip:bob@{redirector.hostport}")
                ended = await asyncio.wait_for(call.ended, 5)
                assert ended.status == 407
                assert len(redirector.requests) == 2  # one answer, refused, no more
        finally:
            await redirector.close()
