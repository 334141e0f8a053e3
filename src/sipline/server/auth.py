"""Digest authentication policy shared by the registrar and the proxy (RFC 3261 §22).

`DigestAuthenticator` turns a request into either an authenticated user name or
the response to send: 401/407 with one challenge per algorithm (in the configured
order of preference, RFC 8760 §2.4), `stale=true` when only the nonce had expired or another process issued it (RFC 7616
§3.3), or 400 for credentials missing required parameters. The realm is the domain.

The flow is direct: the HA1 the credentials name (`DigestVerifier.ha1_key`) is
looked up (the store, off the event loop), then `DigestVerifier.verify_ha1` checks
the credentials with it in hand. An unknown user gets a decoy HA1, so the verifier
does the same work and gives the same answer as for a wrong password: a client
cannot tell whether an account exists.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sipline.core.auth import (
    Credentials,
    DigestStatus,
    DigestVerifier,
    find_algorithm,
    parse_credentials,
)
from sipline.core.clock import Entropy
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.server.auth_failures import AuthFailureLog

__all__ = [
    "AsyncHa1Lookup",
    "AuthObserver",
    "AuthResult",
    "DigestAuthenticator",
]

# (username, realm, base algorithm) -> stored HA1 or None, awaited.
AsyncHa1Lookup = Callable[[str, str, str], Awaitable[str | None]]
# Outcomes that mean "the credentials are wrong": a guess, counted against its source.
_FAILURES = frozenset(
    {DigestStatus.BAD_RESPONSE, DigestStatus.UNKNOWN_USER, DigestStatus.UNSUPPORTED_ALGORITHM}
)


class AuthObserver(Protocol):
    """Told of every failed and successful authentication (the security monitor)."""

    def auth_failed(self, request: Request, user: str, source: tuple[str, int] | None) -> None:
        """Count (and log) a failure of `user` (user@realm) from `source`."""
        ...

    def auth_succeeded(self, source: tuple[str, int] | None) -> None: ...


@dataclass(frozen=True, slots=True)
class AuthResult:
    """`username` when authenticated; otherwise the response to send instead."""

    username: str | None = None
    status: int = 0
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    refused: bool = False  # credentials were sent and are wrong (not only missing or stale)

    @property
    def ok(self) -> bool:
        return self.username is not None


class DigestAuthenticator:
    """Challenges and checks digest credentials, one `DigestVerifier` per realm.

    `secret` keys nonces and decoys (at least 16 bytes); servers sharing it verify
    each other's nonces. `issuer` names this process inside the nonces it issues (its
    node and worker, sipline.server.node.issuer_id): it refuses a nonce count of its own
    nonces it saw already (RFC 7616 §3.3; the count must grow), in its memory, and a
    right answer to another process's nonce gets a nonce of its own with stale=true,
    which is not a failed login. Nothing is written anywhere per request. With
    `stale_before_start` (a worker, which the supervisor may restart), the nonces of
    `issuer` from before this process started are answered stale=true: the counts
    kept for them were lost with the process that issued them.
    """

    def __init__(
        self,
        ha1_lookup: AsyncHa1Lookup,
        *,
        secret: bytes,
        entropy: Entropy,
        algorithms: Iterable[str] = ("MD5",),
        nonce_ttl_s: float = 300.0,
        issuer: int = 0,
        stale_before_start: bool = False,
        observer: AuthObserver | None = None,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        self._lookup = ha1_lookup
        self._secret = secret
        self._entropy = entropy
        self._algorithms = tuple(algorithms)
        self._nonce_ttl_s = nonce_ttl_s
        self._issuer = issuer
        self._stale_before_start = stale_before_start
        self.observer = observer
        self._verifiers: dict[str, DigestVerifier] = {}
        self.failures = AuthFailureLog()
        self.verifier("check.invalid")  # validate the algorithms now, not on first request

    def verifier(self, realm: str) -> DigestVerifier:
        found = self._verifiers.get(realm)
        if found is None:
            found = DigestVerifier(
                realm=realm,
                secret=self._secret,
                entropy=self._entropy,
                algorithms=self._algorithms,
                nonce_ttl_s=self._nonce_ttl_s,
                issuer=self._issuer,
                stale_before_start=self._stale_before_start,
            )
            self._verifiers[realm] = found
        return found

    def challenge(
        self, *, realm: str, now: float, proxy: bool = False, stale: bool = False
    ) -> AuthResult:
        """The 401 (or 407 for a proxy) carrying fresh challenges."""
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        challenges = self.verifier(realm).challenges(now=now, stale=stale)
        return AuthResult(
            status=407 if proxy else 401,
            reason="Proxy Authentication Required" if proxy else "Unauthorized",
            headers=tuple((name, c.serialize()) for c in challenges),
        )

    async def authenticate(
        self,
        request: Request,
        *,
        realm: str,
        now: float,
        proxy: bool = False,
        source: tuple[str, int] | None = None,
    ) -> AuthResult:
        """Check the request's credentials for `realm` (Proxy-Authorization if `proxy`),
        sent from `source` (host, port): failures are counted per source (`observer`), and
        a client that keeps failing is named in the log with the likely cause."""
        try:
            credentials = _credentials_for(request, realm, proxy)
        except RemoteProtocolError as e:
            return AuthResult(status=400, reason=e.reason)
        if credentials is None:
            claimed = (request.from_ if proxy else request.to).uri
            user = getattr(claimed, "user", None) or ""
            self._note_failure(request, f"{user}@{realm}", source, realm, None)
            return self.challenge(realm=realm, now=now, proxy=proxy)
        verifier = self.verifier(realm)
        username = credentials.username
        key = verifier.ha1_key(credentials)
        ha1: str | None = None
        if key is not None:
            stored = await self._lookup(*key)
            # The decoy is computed for every user, found or not: the same work, so
            # the time taken does not tell which (README "Running on the Internet").
            decoy = self._decoy(*key)
            ha1 = stored if stored is not None else decoy
        outcome = verifier.verify_ha1(
            credentials, ha1=ha1, method=request.method, body=request.body, now=now
        )
        if outcome.ok and outcome.username is not None:
            self.failures.succeeded(f"{outcome.username}@{realm}", source)
            if self.observer is not None:
                self.observer.auth_succeeded(source)
            return AuthResult(username=outcome.username)
        if outcome.status is DigestStatus.MISSING_PARAMS:
            return AuthResult(status=400, reason="Bad Request (incomplete credentials)")
        if outcome.status in (
            DigestStatus.BAD_RESPONSE,
            DigestStatus.UNKNOWN_USER,
            DigestStatus.UNSUPPORTED_ALGORITHM,
        ):
            self._note_failure(request, f"{username}@{realm}", source, realm, credentials)
        # Wrong password, unknown user (decoy), unknown nonce, replay, unsupported
        # algorithm: all get fresh challenges, the same for every user; an expired
        # nonce or another process's (a right digest) with stale=true, no failure.
        result = self.challenge(realm=realm, now=now, proxy=proxy, stale=outcome.stale)
        if outcome.status in _FAILURES:
            if self.observer is not None:
                self.observer.auth_failed(request, f"{credentials.username}@{realm}", source)
            return AuthResult(
                status=result.status, reason=result.reason, headers=result.headers, refused=True
            )
        return result

    def _note_failure(
        self,
        request: Request,
        address: str,
        source: tuple[str, int] | None,
        realm: str,
        credentials: Credentials | None,
    ) -> None:
        verifier = self.verifier(realm)
        answered = None
        if credentials is not None and credentials.nonce:
            answered = verifier.nonce_algorithm(credentials.nonce)
        self.failures.failed(
            request,
            address=address,
            source=source,
            offered=verifier.algorithms,
            credentials=credentials,
            answered=answered,
        )

    def _decoy(self, username: str, realm: str, algorithm: str) -> str:
        """A stand-in HA1 for a user the store does not have (`algorithm`: a base name)."""
        mac = hmac.new(
            self._secret, f"decoy\x00{username}\x00{realm}\x00{algorithm}".encode(), "sha256"
        )
        algo = find_algorithm(algorithm)
        assert algo is not None  # ha1_key names only known algorithms
        return hashlib.new(algo.hash_name, mac.digest()).hexdigest()


def _credentials_for(request: Request, realm: str, proxy: bool) -> Credentials | None:
    """The Digest credentials a request carries for `realm` (RFC 3261 §22.4: a UAC
    may send several, one per realm), or None."""
    name = "proxy-authorization" if proxy else "authorization"
    for value in request.headers.get_all(name):
        parsed = parse_credentials(value)
        if isinstance(parsed, Credentials) and parsed.realm == realm:
            return parsed
    return None
