"""The client side of digest authentication for a user agent (RFC 3261 §22.2, §22.3).

`DigestClient` answers 401 and 407 challenges with the account's password, one answer
per realm (RFC 8760 §2.4 picks the strongest algorithm the server listed first). It
remembers the challenges it answered so later requests to the same realm carry
credentials at once (§22.3, with the nonce count going up), and it gives up when the
server rejects an answer that was not merely stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.core.auth import (
    Challenge,
    Credentials,
    OtherAuth,
    answer_challenge,
    parse_challenge,
    parse_credentials,
    select_challenges,
)
from sipline.core.clock import Entropy
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response

__all__ = ["DigestClient"]

_HEADERS = {
    401: ("www-authenticate", "Authorization"),
    407: ("proxy-authenticate", "Proxy-Authorization"),
}


@dataclass(slots=True)
class _Answered:
    challenge: Challenge
    header: str  # Authorization or Proxy-Authorization
    nc: int = 0


class DigestClient:
    """Credentials of one account: `username` and `password` for every realm."""

    def __init__(self, username: str, password: str, *, entropy: Entropy) -> None:
        self.username = username
        self.password = password
        self._entropy = entropy
        # (header, realm) -> the challenge answered: a registrar's 401 and a proxy's 407
        # for the same realm are kept apart.
        self._realms: dict[tuple[str, str], _Answered] = {}

    def _credentials(self, entry: _Answered, request: Request) -> str:
        entry.nc += 1
        return answer_challenge(
            entry.challenge,
            method=request.method,
            uri=request.uri_text,
            username=self.username,
            password=self.password,
            body=request.body,
            entropy=self._entropy,
            nc=entry.nc,
        ).serialize()

    def authorize(self, request: Request, response: Response) -> bool:
        """Add credentials answering `response` (a 401 or 407 to `request`) to
        `request`, replacing those it carried. False when there is nothing to answer
        or the server refused these credentials already (a wrong password)."""
        names = _HEADERS.get(response.status)
        if names is None:
            return False
        challenge_header, credentials_header = names
        challenges: list[Challenge | OtherAuth] = []
        for value in response.headers.get_all(challenge_header):
            try:
                challenges.append(parse_challenge(value))
            except RemoteProtocolError:
                continue  # one broken challenge does not spoil the others
        chosen = select_challenges(challenges)
        if not chosen:
            return False
        sent: dict[str | None, Credentials] = {}
        for value in request.headers.get_all(credentials_header):
            try:
                parsed = parse_credentials(value)
            except RemoteProtocolError:
                continue
            if isinstance(parsed, Credentials):
                sent[parsed.realm] = parsed
        for challenge in chosen:
            prior = sent.get(challenge.realm)
            if prior is not None and not challenge.stale and prior.nc in (None, "00000001"):
                # §22.2: a fresh answer was refused (not a stale nonce): a wrong
                # password, and retrying would only repeat it. Answers reusing a
                # cached nonce (nc > 1) may simply be too old: those are retried.
                self._realms.pop((credentials_header, challenge.realm), None)
                return False
            self._realms[credentials_header, challenge.realm] = _Answered(
                challenge, credentials_header
            )
        request.headers.remove(credentials_header)
        for challenge in chosen:
            entry = self._realms[credentials_header, challenge.realm]
            try:
                request.headers.add(credentials_header, self._credentials(entry, request))
            except LocalProtocolError:
                return False
        return True

    def apply_cached(self, request: Request, *, realms: set[str] | None = None) -> None:
        """Credentials for the realms answered before (§22.3), with the next nonce
        count; a server that expired the nonce will challenge again (stale)."""
        chosen = [
            entry for (_, realm), entry in self._realms.items() if realms is None or realm in realms
        ]
        for entry in chosen:
            request.headers.remove(entry.header)
        for entry in chosen:
            try:
                request.headers.add(entry.header, self._credentials(entry, request))
            except LocalProtocolError:
                continue

    def forget(self) -> None:
        self._realms.clear()
