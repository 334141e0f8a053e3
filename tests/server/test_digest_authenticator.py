"""The server's digest policy: look the HA1 up, then verify with it in hand; an
unknown user costs the same work and gets the same answer as a wrong password."""

from __future__ import annotations

from sipline.core.auth import Challenge, answer_challenge, ha1, parse_challenge
from sipline.core.message import Request, parse_message
from sipline.server.auth import DigestAuthenticator
from sipline.testing import SeededEntropy

REALM = "example.com"
SECRET = b"0123456789abcdef0123456789abcdef"


class _Store:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []

    async def ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        self.asked.append((username, realm, algorithm))
        return ha1("alice", realm, "secret", algorithm) if username == "alice" else None


def _register(authorization: str | None = None) -> Request:
    lines = [
        "REGISTER sip:example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1",
        "Max-Forwards: 70",
        "From: <sip:alice@example.com>;tag=1",
        "To: <sip:alice@example.com>",
        "Call-ID: c1",
        "CSeq: 1 REGISTER",
        "Content-Length: 0",
    ]
    if authorization is not None:
        lines.insert(-1, f"Authorization: {authorization}")
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


async def _answer(auth: DigestAuthenticator, username: str, password: str, nc: int) -> Request:
    challenged = await auth.authenticate(_register(), realm=REALM, now=1.0)
    assert challenged.status == 401
    challenge = parse_challenge(challenged.headers[0][1])
    assert isinstance(challenge, Challenge)
    credentials = answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:example.com",
        username=username,
        password=password,
        entropy=SeededEntropy(nc),
    )
    return _register(credentials.serialize())


async def test_known_user_wrong_password_and_unknown_user() -> None:
    store = _Store()
    auth = DigestAuthenticator(store.ha1, secret=SECRET, entropy=SeededEntropy(1))
    ok = await auth.authenticate(await _answer(auth, "alice", "secret", 1), realm=REALM, now=2.0)
    assert ok.ok and ok.username == "alice"
    wrong = await auth.authenticate(await _answer(auth, "alice", "nope", 2), realm=REALM, now=2.0)
    missing = await auth.authenticate(await _answer(auth, "mallory", "x", 3), realm=REALM, now=2.0)
    # The same answer: a fresh 401 marked refused, with the same headers but the nonce.
    for result in (wrong, missing):
        assert not result.ok and result.refused and result.status == 401
        assert [name for name, _ in result.headers] == ["WWW-Authenticate"]
    # The store is asked once per attempt, for the user the credentials name.
    assert store.asked == [
        ("alice", REALM, "MD5"),
        ("alice", REALM, "MD5"),
        ("mallory", REALM, "MD5"),
    ]
