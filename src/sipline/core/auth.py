"""Digest authentication for SIP, both sides (RFC 3261 §22, RFC 7616, RFC 8760).

The implementation is split by concern; import from here:

- `auth_header`: the header values, `Challenge` and `Credentials` (Digest) or
  `OtherAuth` (any other scheme, kept opaque), with `parse`/`serialize`;
- `auth_digest`: the hash algorithms, HA1/HA2/response/userhash, and the client
  side: `answer_challenge` and `select_challenges`;
- `auth_server`: `DigestVerifier`, which issues self-validating nonces and checks
  credentials against stored HA1 values.

Everything is sans-I/O: time arrives as `now`, randomness from an `Entropy`.
"""

from __future__ import annotations

from sipline.core.auth_digest import (
    ALGORITHMS,
    DigestAlgorithm,
    answer_challenge,
    compute_response,
    find_algorithm,
    ha1,
    ha2,
    select_challenges,
    session_ha1,
    userhash,
    verify_response,
)
from sipline.core.auth_header import (
    Challenge,
    Credentials,
    OtherAuth,
    parse_challenge,
    parse_credentials,
)
from sipline.core.auth_server import (
    DigestStatus,
    DigestVerification,
    DigestVerifier,
    Ha1Lookup,
    UserhashLookup,
)

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestAlgorithm",
    "DigestStatus",
    "DigestVerification",
    "DigestVerifier",
    "Ha1Lookup",
    "OtherAuth",
    "UserhashLookup",
    "answer_challenge",
    "compute_response",
    "find_algorithm",
    "ha1",
    "ha2",
    "parse_challenge",
    "parse_credentials",
    "select_challenges",
    "session_ha1",
    "userhash",
    "verify_response",
]
