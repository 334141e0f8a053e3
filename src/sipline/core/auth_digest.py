"""Digest computation and the client side of digest authentication.

The calculation is RFC 7616 §3.4 with SIP's inputs (RFC 3261 §22.4, RFC 8760
§2): the method is the SIP method, the digest-uri the Request-URI as sent in
`uri`, and strings are hashed as UTF-8.  `H()` is lowercase hex.

    HA1      = H(username ":" realm ":" password)                 §3.4.2
    HA1-sess = H(HA1 ":" nonce ":" cnonce)                        §3.4.2, *-sess
    HA2      = H(method ":" uri)                                  §3.4.3, qop=auth
    HA2      = H(method ":" uri ":" H(body))                      §3.4.3, qop=auth-int
    response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2) §3.4.1
    response = H(HA1 ":" nonce ":" HA2)                           RFC 2069, no qop
    userhash = H(username ":" realm)                              §3.4.4

A server stores the plain (non-session) HA1 per algorithm and never the password;
`ha1()` computes that value and the response functions derive the session form.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sipline.core.auth_header import Challenge, Credentials, OtherAuth
from sipline.core.clock import Entropy, token_from_bytes
from sipline.core.errors import LocalProtocolError

__all__ = [
    "ALGORITHMS",
    "DigestAlgorithm",
    "answer_challenge",
    "compute_response",
    "find_algorithm",
    "ha1",
    "ha2",
    "select_challenges",
    "session_ha1",
    "userhash",
    "verify_response",
]

_CNONCE_BYTES = 16


@dataclass(frozen=True, slots=True)
class DigestAlgorithm:
    """One entry of the IANA "Hash Algorithms for HTTP Digest Authentication" registry."""

    name: str  # canonical token as sent in `algorithm=`
    hash_name: str  # hashlib constructor name
    session: bool  # the "-sess" variant: HA1 mixes in nonce and cnonce
    strength: int  # higher is stronger

    def hash(self, data: str | bytes) -> str:
        """H(data): lowercase hex of the digest of `data` (UTF-8 when text)."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return hashlib.new(self.hash_name, raw).hexdigest()


def _sha512_256_is_real() -> bool:
    # Some builds lack SHA-512/256 and RFC 7616's own example was produced with
    # truncated SHA-512 (a different function); check the FIPS 180-4 "abc" vector.
    try:
        value = hashlib.new("sha512_256", b"abc").hexdigest()
    except ValueError:
        return False
    return value == "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"


def _registry() -> Mapping[str, DigestAlgorithm]:
    entries = [("MD5", "md5", 1), ("SHA-256", "sha256", 2)]
    if _sha512_256_is_real():
        entries.append(("SHA-512-256", "sha512_256", 3))
    table: dict[str, DigestAlgorithm] = {}
    for name, hash_name, strength in entries:
        for session in (False, True):
            full = f"{name}-sess" if session else name
            table[full.upper()] = DigestAlgorithm(full, hash_name, session, strength)
    return MappingProxyType(table)


# Supported algorithms keyed by upper-cased name (algorithm values compare
# case-insensitively, like every token in the challenge).
ALGORITHMS: Mapping[str, DigestAlgorithm] = _registry()


def find_algorithm(name: str | None) -> DigestAlgorithm | None:
    """The algorithm a challenge or credentials names, or None if unsupported.

    An absent `algorithm` parameter means MD5 (RFC 3261 §25.1, RFC 7616 §3.3).
    """
    return ALGORITHMS.get("MD5" if name is None else name.upper())


def _algorithm(algorithm: DigestAlgorithm | str | None) -> DigestAlgorithm:
    if isinstance(algorithm, DigestAlgorithm):
        return algorithm
    found = find_algorithm(algorithm)
    if found is None:
        raise LocalProtocolError(f"unsupported digest algorithm {algorithm!r}")
    return found


def ha1(
    username: str, realm: str, password: str, algorithm: DigestAlgorithm | str | None = None
) -> str:
    """The stored HA1, H(username:realm:password) (RFC 7616 §3.4.2).

    For a "-sess" algorithm this is the value a server keeps; the session HA1
    comes from `session_ha1` once nonce and cnonce are known.
    """
    return _algorithm(algorithm).hash(f"{username}:{realm}:{password}")


def session_ha1(
    stored_ha1: str, nonce: str, cnonce: str, algorithm: DigestAlgorithm | str | None = None
) -> str:
    """HA1 for a "-sess" algorithm: H(HA1:nonce:cnonce) (RFC 7616 §3.4.2)."""
    return _algorithm(algorithm).hash(f"{stored_ha1}:{nonce}:{cnonce}")


def ha2(
    method: str,
    uri: str,
    algorithm: DigestAlgorithm | str | None = None,
    *,
    qop: str | None = None,
    body: bytes = b"",
) -> str:
    """HA2 (RFC 7616 §3.4.3); auth-int hashes the body, H("") when empty (RFC 8760 §2.6)."""
    algo = _algorithm(algorithm)
    if qop is not None and qop.lower() == "auth-int":
        return algo.hash(f"{method}:{uri}:{algo.hash(body)}")
    return algo.hash(f"{method}:{uri}")


def userhash(username: str, realm: str, algorithm: DigestAlgorithm | str | None = None) -> str:
    """The hashed username H(username:realm) (RFC 7616 §3.4.4)."""
    return _algorithm(algorithm).hash(f"{username}:{realm}")


def compute_response(
    *,
    algorithm: DigestAlgorithm | str | None,
    stored_ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The request-digest for the given inputs (RFC 7616 §3.4.1, RFC 2069 without qop).

    `stored_ha1` is the plain HA1; for "-sess" algorithms the session HA1 is derived
    here. With a qop, `nc` (8 hex digits as sent) and `cnonce` are required.
    """
    algo = _algorithm(algorithm)
    key = stored_ha1
    if algo.session:
        if cnonce is None:
            raise LocalProtocolError(f"{algo.name} needs a cnonce")
        key = session_ha1(stored_ha1, nonce, cnonce, algo)
    digest2 = ha2(method, uri, algo, qop=qop, body=body)
    if qop is None:
        return algo.hash(f"{key}:{nonce}:{digest2}")
    if nc is None or cnonce is None:
        raise LocalProtocolError("a qop needs nc and cnonce")
    return algo.hash(f"{key}:{nonce}:{nc}:{cnonce}:{qop}:{digest2}")


def verify_response(
    credentials: Credentials, *, stored_ha1: str, method: str, body: bytes = b""
) -> bool:
    """Whether `credentials` carry the right digest for the stored HA1.

    The stateless half of a server's check: nonce validity, staleness and replay
    are the caller's (see `DigestVerifier`). False when a needed parameter is
    missing or the algorithm is unsupported.
    """
    c = credentials
    algo = find_algorithm(c.algorithm)
    if algo is None or c.nonce is None or c.uri is None or c.response is None:
        return False
    if (c.qop is not None and (c.nc is None or c.cnonce is None)) or (
        algo.session and c.cnonce is None
    ):
        return False
    expected = compute_response(
        algorithm=algo,
        stored_ha1=stored_ha1,
        nonce=c.nonce,
        method=method,
        uri=c.uri,
        qop=c.qop,
        nc=c.nc,
        cnonce=c.cnonce,
        body=body,
    )
    # Constant time, on bytes so a non-ASCII response cannot make it raise.
    return hmac.compare_digest(expected.encode(), c.response.lower().encode("utf-8"))


# --- client side ------------------------------------------------------------------------


def _choose_qop(offered: tuple[str, ...]) -> str | None:
    # RFC 7616 §3.4: the client picks one of the offered options; prefer auth,
    # which survives proxies that rewrite bodies, and use auth-int when alone.
    lowered = {q.lower() for q in offered}
    if not offered:
        return None  # RFC 2069 form; RFC 8760 servers always offer a qop
    if "auth" in lowered:
        return "auth"
    if "auth-int" in lowered:
        return "auth-int"
    return None


def _answerable(challenge: Challenge) -> bool:
    if find_algorithm(challenge.algorithm) is None:
        return False
    return not challenge.qop or _choose_qop(challenge.qop) is not None


def answer_challenge(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str | None = None,
    ha1: str | None = None,
    body: bytes = b"",
    entropy: Entropy,
    nc: int = 1,
    cnonce: str | None = None,
) -> Credentials:
    """Build the credentials that answer `challenge` (RFC 3261 §22.2-§22.3, RFC 7616 §3.4).

    Give either the `password` or the precomputed plain `ha1` for this realm and
    algorithm. `nc` counts the requests made with this nonce, starting at 1; the
    cnonce comes from `entropy` unless given (fixed values reproduce published
    examples). `uri` is the Request-URI the request carries.
    """
    if password is not None and ha1 is not None:
        raise LocalProtocolError("give exactly one of password and ha1")
    algo = find_algorithm(challenge.algorithm)
    if algo is None:
        raise LocalProtocolError(f"unsupported digest algorithm {challenge.algorithm!r}")
    qop = _choose_qop(challenge.qop)
    if challenge.qop and qop is None:
        raise LocalProtocolError(f"no supported qop among {challenge.qop!r}")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise LocalProtocolError(f"nonce count {nc} out of range")
    if ha1 is not None:
        stored_ha1 = ha1
    elif password is not None:
        stored_ha1 = algo.hash(f"{username}:{challenge.realm}:{password}")
    else:
        raise LocalProtocolError("give exactly one of password and ha1")
    need_cnonce = qop is not None or algo.session
    if not need_cnonce:
        cnonce = None
    elif cnonce is None:
        cnonce = token_from_bytes(entropy.random_bytes(_CNONCE_BYTES))
    nc_value = f"{nc:08x}" if qop is not None else None
    response = compute_response(
        algorithm=algo,
        stored_ha1=stored_ha1,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_value,
        cnonce=cnonce,
        body=body,
    )
    # RFC 7616 §3.4.4: with userhash the username is hashed; A1 keeps the real one.
    sent_username = userhash(username, challenge.realm, algo) if challenge.userhash else username
    return Credentials(
        username=sent_username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        cnonce=cnonce,
        opaque=challenge.opaque,
        qop=qop,
        nc=nc_value,
        userhash=challenge.userhash,
    )


def select_challenges(challenges: Iterable[Challenge | OtherAuth]) -> list[Challenge]:
    """The challenges to answer: per realm, the topmost one we can answer.

    RFC 8760 §2.4: challenges for one realm are listed in the server's order of
    preference; the UAC uses the topmost it supports and ignores those it does not
    understand (other schemes, unknown algorithms or qop). Realms keep the order of
    their first appearance, since each realm (e.g. each proxy) needs its own answer
    (RFC 3261 §22.3).
    """
    chosen: dict[str, Challenge] = {}
    for challenge in challenges:
        if isinstance(challenge, OtherAuth) or challenge.realm in chosen:
            continue
        if _answerable(challenge):
            chosen[challenge.realm] = challenge
    return list(chosen.values())
