"""The one digest-retry policy (RFC 3261 §22.2, §22.3) every request of the user agent
goes through: credentials up front for known realms, a new transaction with a higher
CSeq per challenge, a wrong password not retried, and at most three challenges."""

from __future__ import annotations

from ua_helpers import HOST, Challenger, TestServer

from sipline.core.builders import build_request
from sipline.core.message import Request
from sipline.core.uri import parse_uri
from sipline.core.views import NameAddr
from sipline.phone.credentials import DigestClient
from sipline.phone.requests import MAX_CHALLENGES, RequestSender
from sipline.runtime.endpoint import Endpoint, ServerTransaction
from sipline.testing import SeededEntropy
from sipline.transport import Target


class _Stale(TestServer):
    """Challenges every request with a new nonce marked stale: never satisfied."""

    def handle(self, st: ServerTransaction) -> None:
        nonce = f"n{len(self.requests)}"
        st.respond(
            401, extra=[("WWW-Authenticate", f'Digest realm="x", nonce="{nonce}", stale=true')]
        )


class _Checked(TestServer):
    def __init__(self) -> None:
        super().__init__()
        self.auth = Challenger("example.com", {"alice": "secret"})

    def handle(self, st: ServerTransaction) -> None:
        if self.auth.check(st, "authorization"):
            st.respond(200)


def _options(cseq: int = 1) -> Request:
    return build_request(
        "OPTIONS",
        parse_uri("sip:bob@example.com"),
        from_=NameAddr.of("sip:alice@example.com", tag="a"),
        to=NameAddr.of("sip:bob@example.com"),
        call_id="call-1",
        cseq=cseq,
        via=[],
    )


async def _sender(password: str) -> tuple[Endpoint, RequestSender]:
    endpoint = Endpoint()
    await endpoint.bind("UDP", HOST, 0)
    digest = DigestClient("alice", password, entropy=SeededEntropy(1))
    return endpoint, RequestSender(endpoint, digest)


async def test_a_challenge_is_answered_then_credentials_go_up_front() -> None:
    server = await _Checked().start()
    endpoint, sender = await _sender("secret")
    try:
        target = Target("UDP", HOST, server.port)
        assert (await sender.send(_options(), target)).status == 200
        first, second = server.requests
        assert second.cseq.seq == first.cseq.seq + 1 and second.call_id == first.call_id
        assert first.top_via.branch != second.top_via.branch  # a new transaction
        assert (await sender.send(_options(7), target)).status == 200
        assert server.requests[2].headers.get("authorization") is not None  # §22.3
        assert len(server.requests) == 3
    finally:
        await endpoint.close()
        await server.close()


async def test_a_wrong_password_is_sent_once() -> None:
    server = await _Checked().start()
    endpoint, sender = await _sender("guess")
    try:
        response = await sender.send(_options(), Target("UDP", HOST, server.port))
        assert response.status == 401 and len(server.requests) == 2
    finally:
        await endpoint.close()
        await server.close()


async def test_at_most_three_challenges_and_the_cseq_comes_from_the_caller() -> None:
    server = await _Stale().start()
    endpoint, sender = await _sender("secret")
    seqs = iter(range(10, 20))
    try:
        request = _options()
        response = await sender.send(
            request, Target("UDP", HOST, server.port), next_cseq=lambda: next(seqs)
        )
        assert response.status == 401
        assert len(server.requests) == 1 + MAX_CHALLENGES
        assert [r.cseq.seq for r in server.requests] == [1, 10, 11, 12]
    finally:
        await endpoint.close()
        await server.close()
