"""Nonces naming the process that issued them (RFC 7616 §3.3): any process sharing
the secret verifies one, only its issuer tracks its nonce counts, and a right answer
to another process's nonce is re-challenged with stale=true, never refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from test_auth_server import answer, make

from sipline.core.auth import DigestStatus, DigestVerifier
from sipline.core.auth_server import MAX_ISSUER


def worker(index: int, **options: Any) -> DigestVerifier:
    return make(issuer=index, **options)


def test_the_issuer_is_inside_the_nonce_and_under_its_hmac() -> None:
    zero, one = worker(0), worker(1)
    nonce = zero.challenges(now=10.0)[0].nonce
    assert len(nonce) == 56 and "=" not in nonce  # 42 bytes: no padding
    assert zero.nonce_issuer(nonce) == 0 and one.nonce_issuer(nonce) == 0
    assert one.nonce_issuer(one.challenges(now=10.0)[0].nonce) == 1
    # 64 bits: a node's part and a worker's (sipline.server.node.issuer_id).
    top = MAX_ISSUER
    assert worker(top).nonce_issuer(worker(top).issue_nonce("MD5", now=0.0)) == top
    # Claiming another issuer breaks the HMAC, in the node's part or the worker's.
    for byte in (8, 15):
        raw = bytearray(base64.urlsafe_b64decode(nonce))
        raw[byte] ^= 1
        forged = base64.urlsafe_b64encode(raw).decode()
        assert zero.nonce_issuer(forged) is None and one.nonce_issuer(forged) is None
    raw = bytearray(base64.urlsafe_b64decode(nonce))
    raw[9] ^= 1
    forged = base64.urlsafe_b64encode(raw).decode()
    assert zero.nonce_issuer(forged) is None and one.nonce_issuer(forged) is None
    assert zero.nonce_issuer("not a nonce") is None
    # Without an issuer given, a verifier is process 0 (a single process).
    assert make().nonce_issuer(nonce) == 0


@pytest.mark.parametrize("issuer", [-1, MAX_ISSUER + 1])
def test_the_issuer_fits_eight_bytes(issuer: int) -> None:
    with pytest.raises(ValueError):
        worker(issuer)


def test_another_processs_nonce_is_stale_not_a_failure() -> None:
    zero, one = worker(0), worker(1)
    challenge = zero.challenges(now=100.0)[0]
    foreign = one.verify(answer(challenge), method="REGISTER", now=101.0)
    assert foreign.status is DigestStatus.FOREIGN_NONCE
    assert foreign.stale and not foreign.ok and foreign.username == "bob"
    # The issuer has not seen it used: its count starts fresh there.
    assert zero.verify(answer(challenge), method="REGISTER", now=101.0).ok
    assert zero.verify(answer(challenge), method="REGISTER", now=101.0).status is (
        DigestStatus.REPLAY
    )
    # Elsewhere the same nonce stays foreign (never counted, never accepted).
    again = one.verify(answer(challenge, nc=2), method="REGISTER", now=102.0)
    assert again.status is DigestStatus.FOREIGN_NONCE and one.tracked_nonces == 0
    # A wrong digest on a foreign nonce is a wrong digest (RFC 7616 §3.3: stale only
    # for a right one), and an expired foreign nonce is stale like any other.
    wrong = one.verify(answer(challenge, password="guess"), method="REGISTER", now=102.0)
    assert wrong.status is DigestStatus.BAD_RESPONSE and not wrong.stale
    late = one.verify(answer(challenge, nc=3), method="REGISTER", now=100.0 + 301)
    assert late.status is DigestStatus.STALE
    # The fresh challenge of the re-challenging process works there at once.
    fresh = one.challenges(now=103.0, stale=True)[0]
    assert fresh.stale and one.nonce_issuer(fresh.nonce) == 1
    assert one.verify(answer(fresh), method="REGISTER", now=103.0).ok


def test_nonce_counts_expire_with_their_nonces() -> None:
    verifier = worker(0, nonce_ttl_s=30)
    for t in (0.0, 1.0, 2.0):
        challenge = verifier.challenges(now=t)[0]
        assert verifier.verify(answer(challenge), method="REGISTER", now=t).ok
    assert verifier.tracked_nonces == 3
    # Once past nonce_ttl_s a nonce is refused as stale before its count is looked
    # at: its entry is dropped with the next use of another nonce.
    later = verifier.challenges(now=31.5)[0]
    assert verifier.verify(answer(later), method="REGISTER", now=31.5).ok
    assert verifier.tracked_nonces == 2  # the nonces of 0 s and 1 s are gone
    assert verifier.verify(answer(later, nc=2), method="REGISTER", now=40.0).ok
    assert verifier.tracked_nonces == 1


def test_a_restarted_process_does_not_trust_its_predecessors_nonces() -> None:
    """A worker restarted under the same index has lost the counts its predecessor
    kept: a nonce issued before it started may have been used, so it is stale. (A
    single process, by default, answers its nonces across a restart.)"""
    before = worker(1, stale_before_start=True)
    challenge = before.challenges(now=50.0)[0]
    assert before.verify(answer(challenge), method="REGISTER", now=51.0).ok
    assert worker(1).verify(answer(challenge, nc=2), method="REGISTER", now=61.0).ok
    after = worker(1, stale_before_start=True)
    fresh = after.challenges(now=60.0)[0]
    replayed = after.verify(answer(challenge), method="REGISTER", now=61.0)
    assert replayed.status is DigestStatus.STALE and replayed.stale
    assert after.verify(answer(fresh), method="REGISTER", now=61.0).ok
