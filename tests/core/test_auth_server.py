"""The digest verifier: challenges, nonces, staleness, replay, and every refusal."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from sipline.core.auth import (
    Challenge,
    Credentials,
    DigestStatus,
    DigestVerifier,
    answer_challenge,
    compute_response,
    ha1,
    userhash,
)
from sipline.testing import SeededEntropy

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data/digest/vectors.json").read_text("utf-8")
)["vectors"]

REALM = "biloxi.com"
SECRET = b"0123456789abcdef0123456789abcdef"
USERS = {"bob": "zanzibar", "Jäsøn Doe": "Secret, or not?"}
URI = "sip:bob@biloxi.com"


def lookup(username: str, realm: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return None if password is None else ha1(username, realm, password, algorithm)


def userhash_lookup(hashed: str, realm: str, algorithm: str) -> str | None:
    for name in USERS:
        if userhash(name, realm, algorithm) == hashed:
            return name
    return None


def make(**options: Any) -> DigestVerifier:
    settings: dict[str, Any] = {
        "realm": REALM,
        "secret": SECRET,
        "entropy": SeededEntropy(7),
        "ha1_lookup": lookup,
        "algorithms": ("SHA-256", "MD5"),
        **options,
    }
    return DigestVerifier(**settings)


def answer(
    challenge: Challenge,
    *,
    nc: int = 1,
    username: str = "bob",
    password: str | None = None,
    method: str = "REGISTER",
    body: bytes = b"",
) -> Credentials:
    return answer_challenge(
        challenge,
        method=method,
        uri=URI,
        username=username,
        password=USERS[username] if password is None else password,
        body=body,
        entropy=SeededEntropy(nc),
        nc=nc,
    )


def test_challenges_in_the_order_given_with_qop_auth() -> None:
    # RFC 8760 §2.4: the server's order of preference, which the configuration states.
    verifier = make(algorithms=["MD5", "SHA-512-256", "SHA-256", "MD5-sess", "MD5"])
    challenges = verifier.challenges(now=0.0)
    assert [c.algorithm for c in challenges] == ["MD5", "SHA-512-256", "SHA-256", "MD5-sess"]
    assert verifier.algorithms == ("MD5", "SHA-512-256", "SHA-256", "MD5-sess")
    assert all(c.qop == ("auth",) and c.realm == REALM for c in challenges)
    assert all(not c.stale and not c.userhash for c in challenges)
    assert len({c.nonce for c in challenges}) == len(challenges)
    assert all('qop="auth"' in c.serialize() for c in challenges)
    stale = make(userhash_lookup=userhash_lookup).challenges(now=0.0, stale=True)
    assert all(c.stale and c.userhash for c in stale)


def test_an_answer_in_any_offered_algorithm_is_accepted_whichever_nonce_it_took() -> None:
    """RFC 7616 §3.7: the client chooses; a client that reads one challenge and answers
    it with the one algorithm it knows is as authenticated as one that picked it."""
    verifier = make(algorithms=["SHA-256", "MD5"])
    sha256, md5 = verifier.challenges(now=0.0)
    assert verifier.nonce_algorithm(sha256.nonce or "") == "SHA-256"
    assert verifier.nonce_algorithm(md5.nonce or "") == "MD5"
    assert verifier.nonce_algorithm("x" * 56) is None
    crossed = answer(dataclasses.replace(sha256, algorithm="MD5"))
    assert crossed.algorithm == "MD5" and crossed.nonce == sha256.nonce
    assert verifier.verify(crossed, method="REGISTER", now=1.0).ok
    # ... but only in an algorithm this server offers.
    strict = make(algorithms=["SHA-256"])
    [only] = strict.challenges(now=0.0)
    refused = answer(dataclasses.replace(only, algorithm="MD5"))
    assert strict.verify(refused, method="REGISTER", now=1.0).status is (
        DigestStatus.UNSUPPORTED_ALGORITHM
    )


def test_defaults_and_bad_configuration() -> None:
    default = DigestVerifier(
        realm=REALM, secret=SECRET, entropy=SeededEntropy(7), ha1_lookup=lookup
    )
    assert default.algorithms == ("MD5",)
    bad: dict[str, Any]
    for bad in (
        {"realm": ""},
        {"realm": "a\r\nb"},
        {"secret": b"short"},
        {"algorithms": []},
        {"algorithms": ["SHA-1"]},
        {"nonce_ttl_s": 0},
        {"max_tracked_nonces": 0},
    ):
        with pytest.raises(ValueError):
            make(**bad)
    with pytest.raises(ValueError):
        make().issue_nonce("SHA-1", now=0.0)


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256"])
@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_accepts_each_algorithm_and_qop(algorithm: str, qop: str) -> None:
    verifier = make(algorithms=[algorithm])
    challenge = dataclasses.replace(verifier.challenges(now=0.0)[0], qop=(qop,))
    body = b"v=0\r\n"
    credentials = Credentials.parse(answer(challenge, method="INVITE", body=body).serialize())
    assert credentials.qop == qop
    result = verifier.verify(credentials, method="INVITE", body=body, now=1.0)
    assert result.ok and result.username == "bob"
    if qop == "auth-int":  # the body is covered
        again = dataclasses.replace(credentials, nc="00000002")
        assert verifier.verify(again, method="INVITE", body=b"", now=1.0).status is (
            DigestStatus.BAD_RESPONSE
        )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vectors_through_the_verifier(vector: dict[str, Any]) -> None:
    """The vector's user, realm, request and cnonce, with a nonce this server issued."""
    inputs, expected = vector["inputs"], vector["expected"]
    realm, algorithm = inputs["realm"], vector["algorithm"]

    def vector_lookup(username: str, lookup_realm: str, lookup_algorithm: str) -> str | None:
        known = (inputs["username"], realm, algorithm)
        return expected["HA1"] if (username, lookup_realm, lookup_algorithm) == known else None

    def vector_userhash(hashed: str, lookup_realm: str, lookup_algorithm: str) -> str | None:
        return inputs["username"] if hashed == expected.get("userhash") else None

    verifier = DigestVerifier(
        realm=realm,
        secret=SECRET,
        entropy=SeededEntropy(1),
        ha1_lookup=vector_lookup,
        userhash_lookup=vector_userhash if inputs.get("userhash") else None,
        algorithms=[algorithm],
    )
    challenge = verifier.challenges(now=100.0)[0]
    assert challenge.userhash == bool(inputs.get("userhash"))
    credentials = answer_challenge(
        challenge,
        method=inputs["method"],
        uri=inputs["uri"],
        username=inputs["username"],
        password=inputs["password"],
        entropy=SeededEntropy(),
        cnonce=inputs["cnonce"],
    )
    if inputs.get("userhash"):
        assert credentials.username == expected["userhash"]
    received = Credentials.parse(credentials.serialize())
    result = verifier.verify(received, method=inputs["method"], now=101.0)
    assert result.ok and result.username == inputs["username"]
    wrong = answer_challenge(
        challenge,
        method=inputs["method"],
        uri=inputs["uri"],
        username=inputs["username"],
        password=inputs["password"] + "!",
        entropy=SeededEntropy(),
        nc=2,
    )
    assert verifier.verify(wrong, method=inputs["method"], now=101.0).status is (
        DigestStatus.BAD_RESPONSE
    )


def test_stale_after_expiry_and_only_for_a_right_digest() -> None:
    verifier = make(nonce_ttl_s=30)
    challenge = verifier.challenges(now=1000.0)[0]
    assert verifier.verify(answer(challenge, nc=1), method="REGISTER", now=1030.0).ok
    late = verifier.verify(answer(challenge, nc=2), method="REGISTER", now=1030.002)
    assert late.status is DigestStatus.STALE and late.stale and late.username == "bob"
    wrong = answer(challenge, nc=3, password="guess")
    result = verifier.verify(wrong, method="REGISTER", now=1031.0)
    # RFC 7616 §3.3: a wrong digest on an old nonce is not "stale".
    assert result.status is DigestStatus.BAD_RESPONSE and not result.stale
    # A nonce from the future (another clock epoch under the same secret) is stale too.
    early = verifier.verify(answer(challenge, nc=4), method="REGISTER", now=999.0)
    assert early.status is DigestStatus.STALE
    # The re-challenge carries stale=true and its nonce works.
    fresh = verifier.challenges(now=1031.0, stale=True)[0]
    assert fresh.stale
    assert verifier.verify(answer(fresh), method="REGISTER", now=1031.0).ok


def test_nonce_count_replay() -> None:
    verifier = make()
    challenge = verifier.challenges(now=0.0)[0]
    first = answer(challenge, nc=1)
    assert verifier.verify(first, method="REGISTER", now=1.0).ok
    assert verifier.verify(first, method="REGISTER", now=2.0).status is DigestStatus.REPLAY
    assert verifier.verify(answer(challenge, nc=3), method="REGISTER", now=3.0).ok
    # Counts must grow: 2 after 3 is refused, as is reusing 3; 4 is fine.
    for nc in (2, 3):
        result = verifier.verify(answer(challenge, nc=nc), method="REGISTER", now=4.0)
        assert result.status is DigestStatus.REPLAY
    assert verifier.verify(answer(challenge, nc=4), method="REGISTER", now=5.0).ok
    # Counts are per nonce.
    other = verifier.challenges(now=6.0)[0]
    assert verifier.verify(answer(other, nc=1), method="REGISTER", now=6.0).ok


def test_nonce_count_zero_is_refused() -> None:
    verifier = make()
    challenge = verifier.challenges(now=0.0)[0]
    credentials = answer(challenge)
    assert credentials.cnonce is not None
    response = compute_response(
        algorithm="SHA-256",
        stored_ha1=ha1("bob", REALM, "zanzibar", "SHA-256"),
        nonce=challenge.nonce,
        method="REGISTER",
        uri=URI,
        qop="auth",
        nc="00000000",
        cnonce=credentials.cnonce,
    )
    zero = dataclasses.replace(credentials, nc="00000000", response=response)
    assert verifier.verify(zero, method="REGISTER", now=0.0).status is DigestStatus.REPLAY


def test_forgotten_nonces_are_stale_not_reusable() -> None:
    verifier = make(max_tracked_nonces=2)
    a, b, c = (verifier.challenges(now=t)[0] for t in (0.0, 1.0, 2.0))
    assert verifier.verify(answer(a), method="REGISTER", now=3.0).ok
    assert verifier.verify(answer(b), method="REGISTER", now=3.0).ok
    assert verifier.verify(answer(c), method="REGISTER", now=3.0).ok  # evicts a
    result = verifier.verify(answer(a), method="REGISTER", now=3.0)
    assert result.status is DigestStatus.STALE
    assert verifier.verify(answer(b, nc=2), method="REGISTER", now=3.0).ok
    # A nonce issued after the forgotten one is still accepted on first use.
    d = verifier.challenges(now=4.0)[0]
    assert verifier.verify(answer(d), method="REGISTER", now=4.0).ok


def test_rfc2069_credentials_are_single_use() -> None:
    verifier = make(algorithms=["MD5"])
    challenge = dataclasses.replace(verifier.challenges(now=0.0)[0], qop=())
    credentials = answer(challenge)
    assert credentials.qop is None
    assert verifier.verify(credentials, method="REGISTER", now=0.0).ok
    assert verifier.verify(credentials, method="REGISTER", now=0.0).status is DigestStatus.REPLAY
    strict = make(algorithms=["MD5"], allow_no_qop=False)
    challenge = dataclasses.replace(strict.challenges(now=0.0)[0], qop=())
    result = strict.verify(answer(challenge), method="REGISTER", now=0.0)
    assert result.status is DigestStatus.UNSUPPORTED_QOP


def test_userhash() -> None:
    verifier = make(userhash_lookup=userhash_lookup)
    challenge = verifier.challenges(now=0.0)[0]
    credentials = answer(challenge)
    assert credentials.userhash and credentials.username == userhash("bob", REALM, "SHA-256")
    assert verifier.verify(credentials, method="REGISTER", now=0.0).username == "bob"
    unknown = dataclasses.replace(credentials, username="0" * 64, nc="00000002")
    assert verifier.verify(unknown, method="REGISTER", now=0.0).status is (
        DigestStatus.UNKNOWN_USER
    )
    # A server without a userhash table cannot resolve hashed names.
    plain = make()
    hashed = answer(dataclasses.replace(plain.challenges(now=0.0)[0], userhash=True))
    assert plain.verify(hashed, method="REGISTER", now=0.0).status is DigestStatus.UNKNOWN_USER


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"username": None}, DigestStatus.MISSING_PARAMS),
        ({"username": ""}, DigestStatus.MISSING_PARAMS),
        ({"realm": None}, DigestStatus.MISSING_PARAMS),
        ({"nonce": ""}, DigestStatus.MISSING_PARAMS),
        ({"uri": None}, DigestStatus.MISSING_PARAMS),
        ({"response": ""}, DigestStatus.MISSING_PARAMS),
        ({"cnonce": None}, DigestStatus.MISSING_PARAMS),
        ({"nc": None}, DigestStatus.MISSING_PARAMS),
        ({"realm": "atlanta.com"}, DigestStatus.WRONG_REALM),
        ({"algorithm": "SHA-1"}, DigestStatus.UNSUPPORTED_ALGORITHM),
        ({"algorithm": "SHA-512-256"}, DigestStatus.UNSUPPORTED_ALGORITHM),
        # The SHA-256 nonce answered in MD5 (also offered): the digest decides.
        ({"algorithm": "MD5"}, DigestStatus.BAD_RESPONSE),
        ({"qop": "auth-conf"}, DigestStatus.UNSUPPORTED_QOP),
        ({"nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093"}, DigestStatus.UNKNOWN_NONCE),
        ({"nonce": "Ä" * 56}, DigestStatus.UNKNOWN_NONCE),
        ({"username": "mallory"}, DigestStatus.UNKNOWN_USER),
        ({"response": "0" * 64}, DigestStatus.BAD_RESPONSE),
        ({"response": "ä" * 64}, DigestStatus.BAD_RESPONSE),
        ({"uri": "sip:carol@biloxi.com"}, DigestStatus.BAD_RESPONSE),
        ({"cnonce": "other"}, DigestStatus.BAD_RESPONSE),
        ({"nc": "00000002"}, DigestStatus.BAD_RESPONSE),
        ({"qop": "auth-int"}, DigestStatus.BAD_RESPONSE),
        ({"qop": "AUTH"}, DigestStatus.BAD_RESPONSE),  # hashed as sent
        ({"opaque": "ignored"}, DigestStatus.OK),
        ({"algorithm": "sha-256"}, DigestStatus.OK),
    ],
)
def test_refusals(change: dict[str, Any], status: DigestStatus) -> None:
    verifier = make(algorithms=["SHA-256", "MD5"])
    challenge = verifier.challenges(now=0.0)[0]
    assert challenge.algorithm == "SHA-256"
    credentials = dataclasses.replace(answer(challenge), **change)
    assert verifier.verify(credentials, method="REGISTER", now=1.0).status is status


def test_wrong_method_and_other_secret() -> None:
    verifier = make()
    challenge = verifier.challenges(now=0.0)[0]
    credentials = answer(challenge)
    assert verifier.verify(credentials, method="INVITE", now=0.0).status is (
        DigestStatus.BAD_RESPONSE
    )
    other = make(secret=b"another secret of 32 bytes......")
    assert other.verify(credentials, method="REGISTER", now=0.0).status is (
        DigestStatus.UNKNOWN_NONCE
    )
    elsewhere = make(realm="atlanta.com")
    moved = dataclasses.replace(credentials, realm="atlanta.com")
    assert elsewhere.verify(moved, method="REGISTER", now=0.0).status is (
        DigestStatus.UNKNOWN_NONCE
    )
    # Tampering with the issue time inside the nonce breaks its HMAC.
    raw = bytearray(base64.urlsafe_b64decode(challenge.nonce))
    raw[7] ^= 1
    forged = dataclasses.replace(credentials, nonce=base64.urlsafe_b64encode(raw).decode())
    assert verifier.verify(forged, method="REGISTER", now=0.0).status is (
        DigestStatus.UNKNOWN_NONCE
    )
    # The genuine request still passes afterwards.
    assert verifier.verify(credentials, method="REGISTER", now=0.0).ok


def test_seeded_servers_issue_identical_nonces() -> None:
    assert make().challenges(now=5.0) == make().challenges(now=5.0)
    assert make().challenges(now=5.0) != make().challenges(now=6.0)


def test_the_caller_looks_the_ha1_up_then_verifies_with_it_in_hand() -> None:
    verifier = make(ha1_lookup=None, userhash_lookup=userhash_lookup)
    challenge = verifier.challenges(now=0.0)[0]  # SHA-256
    credentials = answer(challenge)
    assert verifier.ha1_key(credentials) == ("bob", REALM, "SHA-256")
    stored = lookup("bob", REALM, "SHA-256")
    assert verifier.verify_ha1(credentials, ha1=stored, method="REGISTER", now=0.0).ok
    # No HA1 (no such user) and a wrong one: refused, the first as an unknown user.
    again = answer(challenge, nc=2)
    assert verifier.verify_ha1(again, ha1=None, method="REGISTER", now=0.0).status is (
        DigestStatus.UNKNOWN_USER
    )
    wrong = verifier.verify_ha1(again, ha1="0" * 64, method="REGISTER", now=0.0)
    assert wrong.status is DigestStatus.BAD_RESPONSE and wrong.username == "bob"
    # Without a synchronous lookup, `verify` says how it is meant to be used.
    with pytest.raises(ValueError, match="verify_ha1"):
        verifier.verify(again, method="REGISTER", now=0.0)


def test_ha1_key_resolves_a_userhash_and_names_nothing_it_cannot_look_up() -> None:
    hashed = make(userhash_lookup=userhash_lookup)
    challenge = dataclasses.replace(hashed.challenges(now=0.0)[1], userhash=True)  # MD5
    credentials = answer(challenge)
    assert credentials.userhash and credentials.username != "bob"
    assert hashed.ha1_key(credentials) == ("bob", REALM, "MD5")
    assert make().ha1_key(credentials) is None  # no userhash lookup
    unknown_algorithm = dataclasses.replace(credentials, algorithm="SHA-1", userhash=False)
    assert make().ha1_key(unknown_algorithm) is None
    sess = dataclasses.replace(credentials, algorithm="MD5-sess", userhash=False)
    assert make().ha1_key(sess) == (sess.username, REALM, "MD5")  # -sess shares the HA1
