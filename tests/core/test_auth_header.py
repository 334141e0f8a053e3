"""Parsing and serialization of challenge and credentials header values."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.core import auth_params
from sipline.core.auth import (
    Challenge,
    Credentials,
    OtherAuth,
    parse_challenge,
    parse_credentials,
)
from sipline.core.errors import LocalProtocolError, RemoteProtocolError

# RFC 7616 §3.9.1, the SHA-256 challenge, folded as printed.
RFC7616_CHALLENGE = (
    'Digest\r\n    realm="http-auth@example.org",\r\n    qop="auth, auth-int",\r\n'
    "    algorithm=SHA-256,\r\n"
    '    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",\r\n'
    '    opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


def test_parse_rfc7616_challenge() -> None:
    challenge = Challenge.parse(RFC7616_CHALLENGE)
    assert challenge == Challenge(
        realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        algorithm="SHA-256",
        qop=("auth", "auth-int"),
    )
    assert challenge.serialize() == (
        'Digest realm="http-auth@example.org", '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", '
        'algorithm=SHA-256, qop="auth,auth-int"'
    )
    assert Challenge.parse(challenge.serialize()) == challenge


def test_parse_rfc3261_challenge_and_credentials() -> None:
    # RFC 3261 §22.4 / §20.44 and §20.7 examples.
    challenge = Challenge.parse(
        'Digest realm="atlanta.com",\r\n domain="sip:boxesbybob.com", qop="auth",\r\n'
        ' nonce="f84f1cec41e6cbe5aea9c8e88d359",\r\n opaque="", stale=FALSE, algorithm=MD5'
    )
    assert challenge.domain == ("sip:boxesbybob.com",)
    assert challenge.opaque == ""
    assert not challenge.stale
    credentials = Credentials.parse(
        'Digest username="Alice", realm="atlanta.com",\r\n'
        ' nonce="84a4cc6f3082121f32b42a2187831a9e",\r\n'
        ' response="7587245234b3434cc3412213e5f113a5432"'
    )
    assert credentials == Credentials(
        username="Alice",
        realm="atlanta.com",
        nonce="84a4cc6f3082121f32b42a2187831a9e",
        response="7587245234b3434cc3412213e5f113a5432",
    )


def test_credentials_serialization_quotes_what_the_grammar_quotes() -> None:
    credentials = Credentials(
        username="bob",
        realm="biloxi.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="sip:bob@biloxi.com",
        response="245f23415f11432b3434341c022",
        algorithm="MD5",
        cnonce="0a4f113b",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
        qop="auth",
        nc="00000001",
    )
    assert credentials.serialize() == (
        'Digest username="bob", realm="biloxi.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", '
        'response="245f23415f11432b3434341c022", algorithm=MD5, cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


def test_tolerant_forms() -> None:
    # Quoted where the grammar says token, any case, LWS around separators, tabs.
    credentials = Credentials.parse(
        'dIgEsT  USERNAME = "bob" ,\tRealm="r",qop="auth" , NC="0000000A", '
        'algorithm="SHA-256", uri="sip:x", x-ext="a b", y-ext=tok '
    )
    assert credentials.username == "bob"
    assert credentials.realm == "r"
    assert credentials.qop == "auth"
    assert credentials.nc == "0000000A"  # hashed as sent
    assert credentials.algorithm == "SHA-256"
    assert credentials.extra == (("x-ext", "a b"), ("y-ext", "tok"))
    challenge = Challenge.parse("Digest realm=r, nonce=n, qop=auth, stale=true, userhash=TRUE")
    assert (challenge.realm, challenge.nonce, challenge.qop) == ("r", "n", ("auth",))
    assert challenge.stale and challenge.userhash
    assert Challenge.parse(b'Digest realm="r", nonce="n", stale=maybe').stale is False


def test_quoted_pairs_and_utf8() -> None:
    challenge = Challenge.parse('Digest realm="a \\"q\\" \\\\ b", nonce="\\n"')
    assert challenge.realm == 'a "q" \\ b'
    assert challenge.nonce == "n"
    assert challenge.serialize().startswith('Digest realm="a \\"q\\" \\\\ b", nonce="n"')
    credentials = Credentials.parse('Digest username="Jäsøn Doe"'.encode())
    assert credentials.username == "Jäsøn Doe"


def test_username_star_rfc7616() -> None:
    credentials = Credentials.parse(
        "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"api@example.org\", userhash=false"
    )
    assert credentials.username == "Jäsøn Doe"
    assert not credentials.userhash
    latin = Credentials.parse("Digest username*=iso-8859-1'en'J%E4s%F8n")
    assert latin.username == "Jäsøn"
    # A username a quoted-string cannot carry is sent as username*.
    odd = Credentials(username="a\r\nb", realm="r")
    assert odd.serialize() == "Digest username*=UTF-8''a%0D%0Ab, realm=\"r\""
    assert Credentials.parse(odd.serialize()) == odd
    for bad in (
        "Digest username=\"a\", username*=UTF-8''a",
        "Digest username*=UTF-8''%FF",
        "Digest username*=KOI8-R''a",
        "Digest username*=a",
    ):
        with pytest.raises(RemoteProtocolError):
            Credentials.parse(bad)


def test_other_schemes_are_kept_opaque() -> None:
    # RFC 4475 §3.1.2.11 (mismatched credentials) uses this scheme.
    value = "NoOneKnowsThisScheme opaque-data=here"
    parsed = parse_credentials(value)
    assert parsed == OtherAuth("NoOneKnowsThisScheme", (("opaque-data", "here"),))
    assert parsed.serialize() == value
    assert parse_challenge(value) == parsed
    basic = parse_challenge("Basic  dXNlcjpwYXNz==")
    assert basic == OtherAuth("Basic", token68="dXNlcjpwYXNz==")
    assert basic.serialize() == "Basic dXNlcjpwYXNz=="
    bearer = parse_credentials('Bearer realm="x y", error=invalid_token')
    assert bearer == OtherAuth("Bearer", (("realm", "x y"), ("error", "invalid_token")))
    assert bearer.serialize() == 'Bearer realm="x y", error=invalid_token'
    assert parse_challenge("Negotiate") == OtherAuth("Negotiate")
    with pytest.raises(RemoteProtocolError, match="scheme"):
        Challenge.parse(value)
    with pytest.raises(RemoteProtocolError, match="scheme"):
        Credentials.parse(value)


@pytest.mark.parametrize(
    ("value", "defect"),
    [
        ("", "auth-scheme"),
        ("   ", "auth-scheme"),
        ("Digest", "auth-params"),
        ("Digest ", "auth-params"),
        ('Digest realm="r"', "nonce"),
        ('Digest nonce="n"', "realm"),
        ('Digest realm="r", nonce="n", realm="s"', "duplicate"),
        ('Digest realm="r", NONCE="n", nonce="m"', "duplicate"),
        ('Digest realm="r" nonce="n"', "','"),
        ('Digest realm="r",, nonce="n"', "name"),
        ('Digest realm="r", nonce="n",', "name"),
        ('Digest realm="r", nonce', "'='"),
        ('Digest realm="r", nonce=', "value"),
        ('Digest realm="r, nonce="n"', "','"),
        ('Digest realm="r', "unterminated"),
        ('Digest realm="r\\', "quoted-pair"),
        ('Digest realm="r\x01", nonce="n"', "control"),
        ('Digest realm="r\r\n", nonce="n"', "control"),
        ('Digest realm="r", nonce="n", qop=""', "qop"),
        ('Digest realm="r", nonce="n", qop="auth,a b"', "qop"),
        ("Digest\x00 realm=r", "whitespace"),
        ('Digest realm="r"\r\nnonce="n"', "','"),
        ("Digest realm=r@x, nonce=n", "','"),
    ],
)
def test_malformed_challenges(value: str, defect: str) -> None:
    with pytest.raises(RemoteProtocolError, match=defect) as info:
        parse_challenge(value)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("value", "defect"),
    [
        ('Digest username="a", nc=1', "nc"),
        ('Digest username="a", nc=0000000g', "nc"),
        ('Digest username="a", nc="000000001"', "nc"),
        ('Digest username="a", qop="auth, auth-int"', "qop"),
        ('Digest username="a", uri=sip:a@b', "','"),
        (b'Digest username="\xff"', "UTF-8"),
    ],
)
def test_malformed_credentials(value: str | bytes, defect: str) -> None:
    with pytest.raises(RemoteProtocolError, match=defect):
        parse_credentials(value)


def test_absent_fields_stay_absent() -> None:
    # RFC 3261 §22.4: credentials may come before any challenge, nearly empty.
    credentials = Credentials.parse('Digest username="bob", nonce="", response=""')
    assert credentials == Credentials(username="bob", nonce="", response="")
    assert credentials.serialize() == 'Digest username="bob", nonce="", response=""'


def test_serialize_refuses_what_cannot_be_sent() -> None:
    base = Credentials(username="u")
    for change in ({"nc": "1"}, {"qop": "a b"}, {"algorithm": "SHA 256"}, {"realm": "a\nb"}):
        with pytest.raises(LocalProtocolError):
            dataclasses.replace(base, **change).serialize()  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Challenge(realm="r", nonce="n", domain=("a b",)).serialize()
    with pytest.raises(LocalProtocolError):
        Challenge(realm="r", nonce="n", extra=(("bad name", "v"),)).serialize()
    with pytest.raises(LocalProtocolError):
        OtherAuth("Basic", (("a", "b"),), token68="xx").serialize()
    with pytest.raises(LocalProtocolError):
        OtherAuth("Bad Scheme").serialize()


# --- properties ----------------------------------------------------------------------------

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
# Anything a quoted-string can carry: every character except CR and LF.
quotable = st.text(st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=20)
maybe = st.none() | quotable
nc_values = st.integers(0, 0xFFFFFFFF).map(lambda n: f"{n:08x}")
uris = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'))
extras = st.lists(st.tuples(tokens, quotable), max_size=3).map(
    lambda items: tuple({f"x-{n}".lower(): (f"x-{n}", v) for n, v in items}.values())
)

challenges = st.builds(
    Challenge,
    realm=quotable,
    nonce=quotable,
    opaque=maybe,
    algorithm=st.none() | tokens,
    qop=st.lists(tokens, max_size=3).map(tuple),
    stale=st.booleans(),
    domain=st.lists(uris.filter(bool), max_size=3).map(tuple),
    userhash=st.booleans(),
    charset=st.none() | tokens,
    extra=extras,
)
credentials = st.builds(
    Credentials,
    username=st.none() | st.text(st.characters(codec="utf-8"), max_size=20),
    realm=maybe,
    nonce=maybe,
    uri=maybe,
    response=maybe,
    algorithm=st.none() | tokens,
    cnonce=maybe,
    opaque=maybe,
    qop=st.none() | tokens,
    nc=st.none() | nc_values,
    userhash=st.booleans(),
    extra=extras,
)


@given(challenges)
def test_challenge_round_trip(challenge: Challenge) -> None:
    assert Challenge.parse(challenge.serialize()) == challenge


@given(credentials)
def test_credentials_round_trip(value: Credentials) -> None:
    if not any(getattr(value, f.name) for f in dataclasses.fields(value)):
        value = dataclasses.replace(value, username="u")  # Digest needs one parameter
    assert Credentials.parse(value.serialize()) == value


def _both_ways(text: str) -> tuple[object, object]:
    def outcome(parse: object) -> object:
        try:
            return parse(text, "credentials")  # type: ignore[operator]
        except RemoteProtocolError as exc:
            return ("error", exc.status)

    return outcome(auth_params.parse_value), outcome(auth_params.scan_value)


@given(credentials)
def test_the_quick_path_gives_what_the_scanner_gives(value: Credentials) -> None:
    quick, scanned = _both_ways(value.serialize())
    assert quick == scanned


@given(st.text(st.sampled_from('Digest ab=,"\\\t x\x01\u00e9'), max_size=40))
def test_the_quick_path_on_any_text(text: str) -> None:
    quick, scanned = _both_ways(text)
    assert quick == scanned


@given(st.builds(OtherAuth, scheme=tokens.filter(lambda s: s.lower() != "digest"), params=extras))
def test_other_round_trip(value: OtherAuth) -> None:
    assert parse_challenge(value.serialize()) == value


SAMPLES = [
    RFC7616_CHALLENGE,
    'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", '
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, userhash=false",
    "NoOneKnowsThisScheme opaque-data=here",
    "Basic dXNlcjpwYXNz",
]
NASTY = " \t\r\n\",=\\\x00\x7f%'*ä"


@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.integers(0, 400),
            st.sampled_from(NASTY) | st.characters(),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutations_raise_only_remote_protocol_error(
    sample: str, edits: list[tuple[str, int, str]]
) -> None:
    text = sample
    for action, position, char in edits:
        at = position % (len(text) + 1)
        if action == "insert":
            text = text[:at] + char + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    for parser in (parse_challenge, parse_credentials, Challenge.parse, Credentials.parse):
        try:
            parsed = parser(text)
        except RemoteProtocolError as error:
            assert error.status == 400
            continue
        # What parses serializes, and that re-parses to the same thing.
        assert parser(parsed.serialize()) == parsed


@given(st.text(max_size=80) | st.binary(max_size=80))
def test_arbitrary_input_raises_only_remote_protocol_error(value: str | bytes) -> None:
    for parser in (parse_challenge, parse_credentials):
        with contextlib.suppress(RemoteProtocolError):
            parser(value)
