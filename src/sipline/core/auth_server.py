"""The server side of digest authentication: challenges and verification.

A `DigestVerifier` serves one realm. It issues one challenge per configured
algorithm, in the configured order of preference, always with `qop="auth"` (RFC 8760
§2.4, §2.6), and verifies credentials against a stored HA1: the server never sees
passwords. The caller looks the HA1 up (`ha1_key` names it, `verify_ha1` takes it;
an asynchronous store is asked before verifying), or hands a synchronous
`ha1_lookup` to `verify`. A client answers the topmost challenge it supports (RFC
7616 §3.7); an answer in any offered algorithm is accepted, whichever challenge its
nonce came from.

Nonces need no storage to be checked (RFC 7616 §3.3 leaves their form to the server):

    nonce = base64url( issued_ms(8) || issuer(8) || random(10) || HMAC-SHA256(secret, ...)[:16] )

The HMAC covers the issue time, the issuer, the random part, the realm and the
algorithm, so a nonce is only accepted by a server holding the same secret, for the
realm it was issued for, and the algorithm it was issued with tells which challenge a
client answered (for diagnosis). Its age gives staleness. The issuer is the process
that made it (sipline.server.node: its node and worker index): replay protection needs
state, the highest nonce count seen per nonce (RFC 7616 §3.3), and only the issuer
keeps it, in its own memory. A right answer to a nonce another process issued is
answered with a fresh nonce and stale=true (`DigestStatus.FOREIGN_NONCE`): the client
retries at once with the new nonce, without asking its user again (RFC 7616 §3.3,
RFC 2617 §3.2.1), and no process writes anything shared per request.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sipline.core.auth_digest import DigestAlgorithm, find_algorithm, verify_response
from sipline.core.auth_header import Challenge, Credentials
from sipline.core.clock import Entropy

__all__ = [
    "MAX_ISSUER",
    "DigestStatus",
    "DigestVerification",
    "DigestVerifier",
    "Ha1Lookup",
    "UserhashLookup",
    "nonce_count",
]

# (username, realm, algorithm) -> stored HA1 hex, or None for an unknown user. The
# algorithm is the base name ("MD5", "SHA-256", "SHA-512-256"): "-sess" variants
# share the plain HA1 (RFC 7616 §3.4.2).
Ha1Lookup = Callable[[str, str, str], str | None]
# (userhash, realm, algorithm) -> the real username, or None (RFC 7616 §3.4.4).
UserhashLookup = Callable[[str, str, str], str | None]

# 64 bits: several nodes' processes share one secret, and each needs an issuer of its own.
_ISSUER_BYTES = 8
_RANDOM_BYTES = 10
_MAC_BYTES = 16
_NONCE_BYTES = 8 + _ISSUER_BYTES + _RANDOM_BYTES + _MAC_BYTES  # 42: 56 base64 characters
MAX_ISSUER = (1 << (8 * _ISSUER_BYTES)) - 1
_NONCE_RE = re.compile(rf"[A-Za-z0-9_\-]{{{_NONCE_BYTES * 4 // 3}}}")
# A new label for each layout: a nonce of an older layout is not ours.
_NONCE_LABEL = b"sipline digest nonce 3\x00"
# A nonce used without qop has no count to track; this marks it spent.
_SPENT = 1 << 32


class DigestStatus(enum.Enum):
    """The outcome of verifying credentials."""

    OK = "ok"
    STALE = "stale"  # right digest, expired nonce: re-challenge with stale=true
    BAD_RESPONSE = "bad-response"  # the digest does not match
    UNKNOWN_NONCE = "unknown-nonce"  # not issued by us, for this realm and algorithm
    # right digest, nonce issued by another process sharing the secret: its counts
    # are kept there, so re-challenge with a nonce of ours and stale=true
    FOREIGN_NONCE = "foreign-nonce"
    REPLAY = "replay"  # nonce count not above the highest seen for this nonce
    MISSING_PARAMS = "missing-params"  # a required parameter is absent or empty
    WRONG_REALM = "wrong-realm"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"
    UNSUPPORTED_QOP = "unsupported-qop"
    UNKNOWN_USER = "unknown-user"  # answer it like BAD_RESPONSE, not to reveal users


@dataclass(frozen=True, slots=True)
class DigestVerification:
    """A verification result; `username` is the real user once identified."""

    status: DigestStatus
    username: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is DigestStatus.OK

    @property
    def stale(self) -> bool:
        """Whether the re-challenge should carry stale=true (RFC 7616 §3.3)."""
        return self.status in (DigestStatus.STALE, DigestStatus.FOREIGN_NONCE)


def _base_name(algo: DigestAlgorithm) -> str:
    return algo.name.removesuffix("-sess")


class DigestVerifier:
    """Issues digest challenges for one realm and verifies the answers.

    `secret` keys the nonce HMAC (at least 16 bytes; share it between servers that
    should accept each other's nonces). `issuer` names this process inside its nonces
    (0 to `MAX_ISSUER`, distinct among the processes sharing the secret): it checks
    the nonce counts of its own nonces and re-challenges the others' with stale=true.
    `algorithms` are the ones offered, in order of preference (the topmost is what
    most clients use), each needing an HA1 (`verify_ha1`, or `verify` with
    `ha1_lookup`). With `stale_before_start`, a nonce of our issuer issued before this
    verifier was first used is stale: a restarted worker has lost the counts its
    predecessor kept, so a nonce that one issued may have been used already. Nonces older than `nonce_ttl_s`
    are stale.
    Credentials without qop (RFC 2069 peers) are accepted when `allow_no_qop`,
    each such nonce only once.
    """

    def __init__(
        self,
        *,
        realm: str,
        secret: bytes,
        entropy: Entropy,
        ha1_lookup: Ha1Lookup | None = None,
        userhash_lookup: UserhashLookup | None = None,
        algorithms: Iterable[str] = ("MD5",),
        nonce_ttl_s: float = 300.0,
        max_tracked_nonces: int = 10_000,
        allow_no_qop: bool = True,
        domain: tuple[str, ...] = (),
        issuer: int = 0,
        stale_before_start: bool = False,
    ) -> None:
        if not realm or any(c in realm for c in "\r\n"):
            raise ValueError("realm must be non-empty and on one line")
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        if nonce_ttl_s <= 0 or max_tracked_nonces < 1:
            raise ValueError("nonce_ttl_s and max_tracked_nonces must be positive")
        if not 0 <= issuer <= MAX_ISSUER:
            raise ValueError(f"issuer must be 0 to {MAX_ISSUER}")
        chosen: list[DigestAlgorithm] = []
        for name in algorithms:
            algo = find_algorithm(name)
            if algo is None:
                raise ValueError(f"unsupported digest algorithm {name!r}")
            if algo not in chosen:
                chosen.append(algo)
        if not chosen:
            raise ValueError("at least one algorithm is needed")
        # RFC 8760 §2.4: challenges in the server's order of preference, as given.
        self._algorithms = chosen
        self.realm = realm
        self._secret = secret
        self._entropy = entropy
        self._ha1_lookup = ha1_lookup
        self._userhash_lookup = userhash_lookup
        self._ttl_ms = round(nonce_ttl_s * 1000)
        self._max_tracked = max_tracked_nonces
        self._allow_no_qop = allow_no_qop
        self._domain = domain
        self._issuer = issuer
        self._issuer_bytes = issuer.to_bytes(_ISSUER_BYTES, "big")
        self._stale_before_start = stale_before_start
        # nonce -> (highest nc seen, issue time in ms), for our own nonces only, in
        # order of first use. Bounded two ways: an entry older than nonce_ttl_s is
        # dropped (such a nonce is refused as stale before its count is looked at, so
        # nothing is lost); first use follows issue closely, so expired entries
        # gather at the front and each use drops them from there in O(1) amortized.
        # Past `max_tracked_nonces`, the oldest entry goes too and `_forgotten_ms`
        # moves up to its issue time.
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        # A nonce of ours issued no later than this and not tracked may have been used
        # already (evicted; or, with `stale_before_start`, issued by a predecessor
        # under the same issuer before our first call, whose counts died with it):
        # it is stale.
        self._forgotten_ms: int | None = None

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The offered algorithms in challenge order."""
        return tuple(a.name for a in self._algorithms)

    # --- challenges -----------------------------------------------------------------------

    def challenges(self, *, now: float, stale: bool = False) -> list[Challenge]:
        """One challenge per algorithm, in order of preference, each with its own nonce."""
        self._started(now)
        return [
            Challenge(
                realm=self.realm,
                nonce=self.issue_nonce(algo.name, now=now),
                algorithm=algo.name,
                qop=("auth",),  # RFC 8760 §2.6: a UAS MUST send qop
                stale=stale,
                domain=self._domain,
                userhash=self._userhash_lookup is not None,
            )
            for algo in self._algorithms
        ]

    def issue_nonce(self, algorithm: str, *, now: float) -> str:
        """A fresh nonce for `algorithm`, valid for `nonce_ttl_s` from `now`."""
        algo = find_algorithm(algorithm)
        if algo is None:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        self._started(now)
        head = round(now * 1000).to_bytes(8, "big", signed=True) + self._issuer_bytes
        head += self._entropy.random_bytes(_RANDOM_BYTES)
        return base64.urlsafe_b64encode(head + self._mac(head, algo)).decode("ascii")

    def _mac(self, head: bytes, algo: DigestAlgorithm) -> bytes:
        message = b"\x00".join(
            (_NONCE_LABEL, head, self.realm.encode("utf-8"), algo.name.encode("ascii"))
        )
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def _started(self, now: float) -> None:
        """Note the first call: nonces of our issuer from before it are not ours."""
        if self._stale_before_start and self._forgotten_ms is None:
            self._forgotten_ms = round(now * 1000) - 1

    @property
    def tracked_nonces(self) -> int:
        """How many nonces' counts are kept."""
        return len(self._counts)

    def nonce_issuer(self, nonce: str) -> int | None:
        """The process that issued `nonce` (its `issuer`), or None if it is not a nonce
        of this realm under our secret."""
        found = self._nonce_origin(nonce)
        return found[1] if found is not None else None

    def nonce_algorithm(self, nonce: str) -> str | None:
        """The algorithm of the challenge that carried `nonce`, or None if it is not
        one of ours."""
        found = self._nonce_origin(nonce)
        return found[2].name if found is not None else None

    def _nonce_origin(self, nonce: str) -> tuple[int, int, DigestAlgorithm] | None:
        """When, by which issuer and for which offered algorithm `nonce` was issued
        under our secret, or None."""
        if _NONCE_RE.fullmatch(nonce) is None:
            return None
        raw = base64.urlsafe_b64decode(nonce)  # 56 characters of the alphabet always decode
        head, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        for algo in self._algorithms:
            if hmac.compare_digest(mac, self._mac(head, algo)):
                issuer = int.from_bytes(head[8 : 8 + _ISSUER_BYTES], "big")
                return int.from_bytes(head[:8], "big", signed=True), issuer, algo
        return None

    # --- verification ---------------------------------------------------------------------

    def ha1_key(self, credentials: Credentials) -> tuple[str, str, str] | None:
        """(username, realm, base algorithm) of the HA1 verifying `credentials` needs,
        the userhash resolved (RFC 7616 §3.4.4); None when there is none to look up (no
        username, an unknown algorithm, a userhash nobody has)."""
        algo = find_algorithm(credentials.algorithm)
        username = self._username(credentials, algo)
        if algo is None or not username:
            return None
        return username, self.realm, _base_name(algo)

    def _username(self, c: Credentials, algo: DigestAlgorithm | None) -> str | None:
        if not c.userhash:
            return c.username
        lookup = self._userhash_lookup
        if lookup is None or algo is None or not c.username:
            return None
        return lookup(c.username, self.realm, _base_name(algo))

    def verify(
        self, credentials: Credentials, *, method: str, body: bytes = b"", now: float
    ) -> DigestVerification:
        """`verify_ha1` with the HA1 from `ha1_lookup`."""
        if self._ha1_lookup is None:
            raise ValueError("verify needs an ha1_lookup: look the HA1 up, then verify_ha1")
        key = self.ha1_key(credentials)
        stored = self._ha1_lookup(*key) if key is not None else None
        return self.verify_ha1(credentials, ha1=stored, method=method, body=body, now=now)

    def verify_ha1(
        self,
        credentials: Credentials,
        *,
        ha1: str | None,
        method: str,
        body: bytes = b"",
        now: float,
    ) -> DigestVerification:
        """Check `credentials` sent with a `method` request carrying `body`, against
        `ha1`, the stored HA1 `ha1_key(credentials)` names (None: no such user).

        The `uri` parameter is hashed as sent; RFC 8760 §2.6 lets it differ from the
        Request-URI after retargeting, so checking that it names a user this server
        serves is the application's policy.
        """
        self._started(now)
        c = credentials
        if not (c.username and c.realm is not None and c.nonce and c.uri and c.response):
            return DigestVerification(DigestStatus.MISSING_PARAMS)
        qop = c.qop.lower() if c.qop is not None else None
        algo = find_algorithm(c.algorithm)
        # RFC 7616 §3.4: cnonce and nc come with a qop; "-sess" needs a cnonce.
        if (qop is not None and (c.cnonce is None or c.nc is None)) or (
            algo is not None and algo.session and c.cnonce is None
        ):
            return DigestVerification(DigestStatus.MISSING_PARAMS)
        if c.realm != self.realm:
            return DigestVerification(DigestStatus.WRONG_REALM)
        if algo is None or algo not in self._algorithms:
            return DigestVerification(DigestStatus.UNSUPPORTED_ALGORITHM)
        if qop not in ("auth", "auth-int") and not (qop is None and self._allow_no_qop):
            return DigestVerification(DigestStatus.UNSUPPORTED_QOP)
        # RFC 7616 §3.7: the client picks among the challenges; an answer in any offered
        # algorithm is as good whichever challenge's nonce it took (some clients read
        # one challenge and answer it with the only algorithm they know).
        origin = self._nonce_origin(c.nonce)
        if origin is None:
            return DigestVerification(DigestStatus.UNKNOWN_NONCE)
        issued_ms, issuer, _ = origin

        username = self._username(c, algo)
        if username is None or ha1 is None:
            return DigestVerification(DigestStatus.UNKNOWN_USER)
        if not verify_response(c, stored_ha1=ha1, method=method, body=body):
            return DigestVerification(DigestStatus.BAD_RESPONSE, username)

        # RFC 7616 §3.3: stale only once the digest is known to be right.
        now_ms = round(now * 1000)
        age_ms = now_ms - issued_ms
        if age_ms > self._ttl_ms or age_ms < 0:
            return DigestVerification(DigestStatus.STALE, username)
        if issuer != self._issuer:
            # Its counts are in its issuer's memory: a nonce of ours instead (stale=true).
            return DigestVerification(DigestStatus.FOREIGN_NONCE, username)
        return DigestVerification(self._count(c.nonce, c.nc, issued_ms, now_ms), username)

    def _count(self, nonce: str, nc: str | None, issued_ms: int, now_ms: int) -> DigestStatus:
        """Record a use of `nonce`, refusing a nonce count not above the last one
        (RFC 7616 §3.3: the count must grow)."""
        counts = self._counts
        while counts:  # drop the expired entries at the front (see __init__)
            _, (_, oldest_ms) = next(iter(counts.items()))
            if now_ms - oldest_ms <= self._ttl_ms:
                break
            counts.popitem(last=False)
        count = nonce_count(nc)
        entry = counts.get(nonce)
        if entry is None:
            if self._forgotten_ms is not None and issued_ms <= self._forgotten_ms:
                # Possibly used before we forgot it: make the client fetch a new one.
                return DigestStatus.STALE
            seen = 0
        else:
            seen = entry[0]
        if count <= seen or seen == _SPENT:
            return DigestStatus.REPLAY
        counts[nonce] = (count, issued_ms)
        while len(counts) > self._max_tracked:
            _, (_, evicted_ms) = counts.popitem(last=False)
            if self._forgotten_ms is None or evicted_ms > self._forgotten_ms:
                self._forgotten_ms = evicted_ms
        return DigestStatus.OK


def nonce_count(nc: str | None) -> int:
    """The count a use of a nonce records: its `nc` (RFC 7616 §3.4), or a mark that
    spends the nonce for credentials without qop."""
    return _SPENT if nc is None else int(nc, 16)
