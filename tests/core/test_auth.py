"""Digest computation and the client side, checked against the published vectors.

The vectors come from tests/data/digest/vectors.json (see VECTORS.md there): RFC 2617
§3.5, RFC 7616 §3.9.1 (MD5, SHA-256) and §3.9.2 with the true SHA-512/256 values,
not the ones printed in the RFC (those are truncated SHA-512).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sipline.core.auth import (
    ALGORITHMS,
    Challenge,
    Credentials,
    DigestStatus,
    DigestVerifier,
    OtherAuth,
    answer_challenge,
    compute_response,
    find_algorithm,
    ha1,
    ha2,
    parse_challenge,
    select_challenges,
    session_ha1,
    userhash,
    verify_response,
)
from sipline.core.errors import LocalProtocolError
from sipline.testing import SeededEntropy

DATA = json.loads((Path(__file__).parents[1] / "data/digest/vectors.json").read_text("utf-8"))
VECTORS: list[dict[str, Any]] = DATA["vectors"]
IDS = [v["id"] for v in VECTORS]


def _challenge(vector: dict[str, Any]) -> Challenge:
    inputs = vector["inputs"]
    return Challenge(
        realm=inputs["realm"],
        nonce=inputs["nonce"],
        opaque=inputs["opaque"],
        # RFC 2617's example sends no algorithm parameter: MD5 by default.
        algorithm=None if vector["id"].startswith("rfc2617") else vector["algorithm"],
        qop=("auth", "auth-int"),
        userhash=bool(inputs.get("userhash")),
        charset=inputs.get("charset"),
    )


def _answer(vector: dict[str, Any], **changes: Any) -> Credentials:
    inputs = {**vector["inputs"], **changes}
    return answer_challenge(
        _challenge(vector),
        method=inputs["method"],
        uri=inputs["uri"],
        username=inputs["username"],
        password=inputs["password"],
        entropy=SeededEntropy(0),
        nc=int(inputs["nc"], 16),
        cnonce=inputs["cnonce"],
    )


def test_sha512_256_is_fips_sha512_256() -> None:
    sanity = DATA["extra"]["sha512_256_sanity"]
    assert find_algorithm("SHA-512-256") is not None
    assert find_algorithm("sha-512-256").hash(sanity["input"]) == sanity["value"]  # type: ignore[union-attr]
    # Not SHA-512 truncated, the mistake behind RFC 7616 §3.9.2's printed values.
    assert sanity["value"] != hashlib.sha512(b"abc").hexdigest()[:64]


def test_registry_has_the_six_algorithms() -> None:
    names = {a.name for a in ALGORITHMS.values()}
    assert names == {
        "MD5",
        "MD5-sess",
        "SHA-256",
        "SHA-256-sess",
        "SHA-512-256",
        "SHA-512-256-sess",
    }
    assert find_algorithm(None) is ALGORITHMS["MD5"]
    assert find_algorithm("md5-SESS") is ALGORITHMS["MD5-SESS"]
    assert find_algorithm("SHA-1") is None


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_intermediates(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    algo = vector["algorithm"]
    stored = ha1(inputs["username"], inputs["realm"], inputs["password"], algo)
    assert stored == expected["HA1"]
    assert ha2(inputs["method"], inputs["uri"], algo, qop="auth") == expected["HA2"]
    response = compute_response(
        algorithm=algo,
        stored_ha1=stored,
        nonce=inputs["nonce"],
        method=inputs["method"],
        uri=inputs["uri"],
        qop=inputs["qop"],
        nc=inputs["nc"],
        cnonce=inputs["cnonce"],
    )
    assert response == expected["response"]
    if "userhash" in expected:
        assert userhash(inputs["username"], inputs["realm"], algo) == expected["userhash"]
        assert expected["userhash"] != vector["rfc_printed"]["userhash"]
        assert expected["response"] != vector["rfc_printed"]["response"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_on_client(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    credentials = _answer(vector)
    assert credentials.response == expected["response"]
    assert credentials.qop == "auth"  # preferred over auth-int
    assert credentials.nc == inputs["nc"]
    assert credentials.cnonce == inputs["cnonce"]
    assert credentials.opaque == inputs["opaque"]
    assert credentials.uri == inputs["uri"]
    if inputs.get("userhash"):
        assert credentials.username == expected["userhash"]
        assert credentials.userhash
    else:
        assert credentials.username == inputs["username"]
    # It survives the wire.
    assert Credentials.parse(credentials.serialize()) == credentials


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_on_client_with_precomputed_ha1(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    credentials = answer_challenge(
        _challenge(vector),
        method=inputs["method"],
        uri=inputs["uri"],
        username=inputs["username"],
        ha1=vector["expected"]["HA1"],
        entropy=SeededEntropy(0),
        cnonce=inputs["cnonce"],
    )
    assert credentials.response == vector["expected"]["response"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_on_server_check(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    credentials = Credentials(
        username=inputs["username"],
        realm=inputs["realm"],
        nonce=inputs["nonce"],
        uri=inputs["uri"],
        response=expected["response"],
        algorithm=vector["algorithm"],
        cnonce=inputs["cnonce"],
        opaque=inputs["opaque"],
        qop=inputs["qop"],
        nc=inputs["nc"],
    )
    stored = expected["HA1"]
    assert verify_response(credentials, stored_ha1=stored, method=inputs["method"])
    # Hex digits compare case-insensitively.
    upper = dataclasses.replace(credentials, response=expected["response"].upper())
    assert verify_response(upper, stored_ha1=stored, method=inputs["method"])
    # The value the RFC prints, where it differs, must not pass.
    printed = vector["rfc_printed"]["response"]
    if printed != expected["response"]:
        wrong = dataclasses.replace(credentials, response=printed)
        assert not verify_response(wrong, stored_ha1=stored, method=inputs["method"])


HASHED_INPUTS = ["username", "realm", "password", "method", "uri", "nonce", "nc", "cnonce"]


@pytest.mark.parametrize("field", HASHED_INPUTS)
@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_changing_any_input_fails(vector: dict[str, Any], field: str) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    original = inputs[field]
    changed = "00000002" if field == "nc" else original + "x"
    # Compute what a client with one input changed would send...
    altered = {**inputs, field: changed}
    algo = vector["algorithm"]
    stored = ha1(altered["username"], altered["realm"], altered["password"], algo)
    response = compute_response(
        algorithm=algo,
        stored_ha1=stored,
        nonce=altered["nonce"],
        method=altered["method"],
        uri=altered["uri"],
        qop="auth",
        nc=altered["nc"],
        cnonce=altered["cnonce"],
    )
    assert response != expected["response"]
    # ...and check a server holding the true HA1 rejects the altered request.
    credentials = Credentials(
        username=inputs["username"],
        realm=inputs["realm"],
        nonce=altered["nonce"],
        uri=altered["uri"],
        response=expected["response"],
        algorithm=algo,
        cnonce=altered["cnonce"],
        qop="auth",
        nc=altered["nc"],
    )
    if field in ("username", "realm", "password"):
        # The request is intact but the HA1 is someone else's.
        credentials = dataclasses.replace(credentials, response=response)
    ok = verify_response(credentials, stored_ha1=expected["HA1"], method=altered["method"])
    assert not ok


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_changing_qop_or_algorithm_fails(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    base = Credentials(
        username=inputs["username"],
        realm=inputs["realm"],
        nonce=inputs["nonce"],
        uri=inputs["uri"],
        response=expected["response"],
        algorithm=vector["algorithm"],
        cnonce=inputs["cnonce"],
        qop="auth",
        nc=inputs["nc"],
    )
    stored, method = expected["HA1"], inputs["method"]
    assert verify_response(base, stored_ha1=stored, method=method)
    for change in (
        {"qop": "auth-int"},
        {"qop": None, "nc": None, "cnonce": None},
        {"algorithm": vector["algorithm"] + "-sess"},
        {"algorithm": "SHA-256" if vector["algorithm"] != "SHA-256" else "MD5"},
        {"response": expected["response"][:-1]},
        {"response": ""},
    ):
        changed = dataclasses.replace(base, **change)
        assert not verify_response(changed, stored_ha1=stored, method=method), change


def test_pitfall_password_case() -> None:
    pitfall = DATA["extra"]["pitfall_case_of_password"]
    vector = VECTORS[0]
    credentials = _answer(vector, password="Circle of Life")
    assert credentials.response == pitfall["value"]


def test_auth_int_hashes_the_body_and_empty_body_is_h_of_empty() -> None:
    empty = DATA["extra"]["rfc8760_empty_body_sha256"]["value"]
    method, uri = "INVITE", "sip:bob@biloxi.example.com"
    h = ALGORITHMS["SHA-256"].hash
    assert h(b"") == empty
    assert ha2(method, uri, "SHA-256", qop="auth-int") == h(f"{method}:{uri}:{empty}")
    assert ha2(method, uri, "SHA-256", qop="auth-int", body=b"v=0\r\n") == h(
        f"{method}:{uri}:{h(b'v=0' + bytes([13, 10]))}"
    )
    assert ha2(method, uri, "SHA-256", qop="auth") == h(f"{method}:{uri}")


def test_rfc2069_response_without_qop() -> None:
    stored = ha1("bob", "biloxi.com", "zanzibar")
    md5 = ALGORITHMS["MD5"].hash
    expected = md5(f"{stored}:abc:{md5('REGISTER:sip:biloxi.com')}")
    got = compute_response(
        algorithm=None, stored_ha1=stored, nonce="abc", method="REGISTER", uri="sip:biloxi.com"
    )
    assert got == expected
    challenge = Challenge(realm="biloxi.com", nonce="abc")
    credentials = answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:biloxi.com",
        username="bob",
        password="zanzibar",
        entropy=SeededEntropy(3),
    )
    assert credentials.response == expected
    assert (credentials.qop, credentials.nc, credentials.cnonce, credentials.algorithm) == (
        None,
        None,
        None,
        None,
    )
    assert "qop" not in credentials.serialize()
    assert verify_response(credentials, stored_ha1=stored, method="REGISTER")


@pytest.mark.parametrize("name", ["MD5-sess", "SHA-256-sess", "SHA-512-256-sess"])
def test_session_algorithms(name: str) -> None:
    algo = ALGORITHMS[name.upper()]
    stored = ha1("bob", "r", "pw", name)
    assert stored == ha1("bob", "r", "pw", name.removesuffix("-sess"))
    key = session_ha1(stored, "n", "c", name)
    assert key == algo.hash(f"{stored}:n:c")
    expected = algo.hash(f"{key}:n:00000001:c:auth:{algo.hash('BYE:sip:a@b')}")
    got = compute_response(
        algorithm=name,
        stored_ha1=stored,
        nonce="n",
        method="BYE",
        uri="sip:a@b",
        qop="auth",
        nc="00000001",
        cnonce="c",
    )
    assert got == expected
    with pytest.raises(LocalProtocolError):
        compute_response(algorithm=name, stored_ha1=stored, nonce="n", method="BYE", uri="u")


def test_client_chooses_qop_cnonce_and_nc() -> None:
    def answer(qop: tuple[str, ...], nc: int = 1, seed: int = 0) -> Credentials:
        challenge = Challenge(realm="r", nonce="n", algorithm="SHA-256", qop=qop)
        return answer_challenge(
            challenge,
            method="INVITE",
            uri="sip:a@b",
            username="u",
            password="p",
            entropy=SeededEntropy(seed),
            nc=nc,
        )

    assert answer(("auth-int", "auth")).qop == "auth"
    assert answer(("auth-int",)).qop == "auth-int"
    assert answer(("AUTH",)).qop == "auth"
    assert answer(("auth",), nc=255).nc == "000000ff"
    assert answer(("auth",), nc=0xFFFFFFFF).nc == "ffffffff"
    first, again, other = answer(("auth",)), answer(("auth",)), answer(("auth",), seed=1)
    assert first.cnonce and first.cnonce == again.cnonce  # deterministic under a seed
    assert first.cnonce != other.cnonce
    for bad_nc in (0, 1 << 32):
        with pytest.raises(LocalProtocolError):
            answer(("auth",), nc=bad_nc)
    with pytest.raises(LocalProtocolError):
        answer(("auth-conf",))


def test_client_refuses_bad_arguments() -> None:
    good = Challenge(realm="r", nonce="n", qop=("auth",))
    kwargs: dict[str, Any] = {"method": "INVITE", "uri": "sip:a@b", "username": "u"}
    with pytest.raises(LocalProtocolError):
        answer_challenge(good, entropy=SeededEntropy(), **kwargs)
    with pytest.raises(LocalProtocolError):
        answer_challenge(good, entropy=SeededEntropy(), password="p", ha1="00", **kwargs)
    unknown = Challenge(realm="r", nonce="n", algorithm="SHA-1", qop=("auth",))
    with pytest.raises(LocalProtocolError):
        answer_challenge(unknown, entropy=SeededEntropy(), password="p", **kwargs)
    with pytest.raises(LocalProtocolError):
        ha1("u", "r", "p", "SHA-1")


def test_client_userhash_keeps_real_username_in_a1() -> None:
    vector = VECTORS[3]
    plain = dataclasses.replace(_challenge(vector), userhash=False)
    inputs = vector["inputs"]
    credentials = answer_challenge(
        plain,
        method=inputs["method"],
        uri=inputs["uri"],
        username=inputs["username"],
        password=inputs["password"],
        entropy=SeededEntropy(),
        cnonce=inputs["cnonce"],
    )
    assert credentials.username == "Jäsøn Doe"
    assert not credentials.userhash
    assert credentials.response == vector["expected"]["response"]


def test_select_challenges_topmost_supported_per_realm() -> None:
    values = [
        'Digest realm="a", nonce="1", algorithm=SHA-3-512, qop="auth"',
        "NoOneKnowsThisScheme opaque-data=here",
        'Digest realm="a", nonce="2", algorithm=SHA-256, qop="auth"',
        'Digest realm="b", nonce="3", algorithm=MD5, qop="auth-conf"',
        'Digest realm="a", nonce="4", algorithm=MD5, qop="auth"',
        'Digest realm="b", nonce="5", qop="auth"',
        'Digest realm="c", nonce="6", algorithm=md5, qop="auth"',
        'Digest realm="b", nonce="7", algorithm=SHA-512-256, qop="auth"',
    ]
    chosen = select_challenges(parse_challenge(v) for v in values)
    assert [(c.realm, c.nonce) for c in chosen] == [("a", "2"), ("b", "5"), ("c", "6")]
    assert select_challenges([OtherAuth("Basic", token68="eA==")]) == []


def test_server_challenges_answered_by_client() -> None:
    """The client picks the topmost challenge the server sends, and the server accepts it."""
    users = {"alice": "secret"}

    def lookup(username: str, realm: str, algorithm: str) -> str | None:
        password = users.get(username)
        return None if password is None else ha1(username, realm, password, algorithm)

    verifier = DigestVerifier(
        realm="atlanta.com",
        secret=b"s" * 32,
        entropy=SeededEntropy(9),
        ha1_lookup=lookup,
        algorithms=["SHA-512-256", "SHA-256", "MD5"],
    )
    wire = [c.serialize() for c in verifier.challenges(now=0.0)]
    chosen = select_challenges(parse_challenge(v) for v in wire)
    assert [c.algorithm for c in chosen] == ["SHA-512-256"]  # the topmost (RFC 8760 §2.4)
    credentials = answer_challenge(
        chosen[0],
        method="INVITE",
        uri="sip:bob@biloxi.com",
        username="alice",
        password="secret",
        entropy=SeededEntropy(1),
    )
    received = Credentials.parse(credentials.serialize())
    result = verifier.verify(received, method="INVITE", now=1.0)
    assert result.status is DigestStatus.OK
    assert result.username == "alice"


def test_verify_response_needs_its_parameters() -> None:
    stored = ha1("bob", "r", "pw")
    complete = answer_challenge(
        Challenge(realm="r", nonce="n", algorithm="MD5-sess", qop=("auth",)),
        method="BYE",
        uri="sip:a@b",
        username="bob",
        ha1=stored,
        entropy=SeededEntropy(),
    )
    assert verify_response(complete, stored_ha1=stored, method="BYE")
    missing: list[dict[str, Any]] = [{"nonce": None}, {"uri": None}, {"response": None}]
    for change in [*missing, {"nc": None}]:
        incomplete = dataclasses.replace(complete, **change)
        assert not verify_response(incomplete, stored_ha1=stored, method="BYE"), change
    sess_without_cnonce = dataclasses.replace(complete, qop=None, nc=None, cnonce=None)
    assert not verify_response(sess_without_cnonce, stored_ha1=stored, method="BYE")
    with pytest.raises(LocalProtocolError):
        compute_response(
            algorithm="MD5", stored_ha1=stored, nonce="n", method="BYE", uri="u", qop="auth"
        )
