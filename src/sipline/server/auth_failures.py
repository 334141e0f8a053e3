"""Naming, in the log, a client that keeps failing the digest challenge, with the
likely cause.

A client that cannot answer any challenge it is offered (it knows only MD5 and reads
only the first or only the last challenge, RFC 7616 §3.7) gets 401 forever, and its
user gets no clue why. Consecutive failures are counted per (address, source host;
many clients send each attempt from a new port): wrong credentials, or a challenge
left unanswered (the next request comes without credentials again). The third, and
every hundredth after it, log one warning naming the address, the source, the
User-Agent and the likely cause. A success forgets the count. The table is bounded:
the least recently failing entries are dropped first.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from sipline.core.auth import Credentials
from sipline.core.message import Request

__all__ = ["AuthFailureLog"]

log = logging.getLogger("sipline.auth")

_REPEAT_EVERY = 100
_MAX_TEXT = 80


def _printable(text: str) -> str:
    """Wire text made safe for one log line (no control characters), bounded."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= _MAX_TEXT else clean[: _MAX_TEXT - 3] + "..."


class AuthFailureLog:
    """Counts consecutive digest failures per (address, source host) and logs the
    repeated ones with their likely cause."""

    def __init__(self, *, threshold: int = 3, max_tracked: int = 4096) -> None:
        if threshold < 1 or max_tracked < 1:
            raise ValueError("threshold and max_tracked must be positive")
        self._threshold = threshold
        self._max_tracked = max_tracked
        # (address, source host) -> (failures, challenged without an answer yet)
        self._counts: OrderedDict[tuple[str, str], tuple[int, bool]] = OrderedDict()

    def succeeded(self, address: str, source: tuple[str, int] | None) -> None:
        self._counts.pop((address, source[0] if source else ""), None)

    def failed(
        self,
        request: Request,
        *,
        address: str,
        source: tuple[str, int] | None,
        offered: tuple[str, ...],
        credentials: Credentials | None,
        answered: str | None,
    ) -> None:
        """One more failure of `address` from `source`. `offered` are the algorithms
        challenged with, in order; `credentials` what the request carried (None: no
        answer to the challenge); `answered` the algorithm of the challenge whose
        nonce the credentials carry, when it was one of ours."""
        key = (address, source[0] if source else "")
        count, challenged = self._counts.pop(key, (0, False))
        if credentials is None and not challenged:
            # The usual first request of a client: a failure only if this challenge
            # goes unanswered too (the next request again comes without credentials).
            self._remember(key, (count, True))
            return
        count += 1
        self._remember(key, (count, credentials is None))
        if count != self._threshold and count % _REPEAT_EVERY != 0:
            return
        agent = request.headers.get("user-agent")
        who = f"{_printable(address)} from {_where(source)}"
        if agent:
            who += f" (User-Agent {_printable(agent)})"
        log.warning(
            "%s %s; failed %d times: %s, see [auth] algorithms",
            who,
            _what(offered, credentials, answered),
            count,
            _cause(offered, credentials),
        )

    def _remember(self, key: tuple[str, str], entry: tuple[int, bool]) -> None:
        self._counts[key] = entry
        while len(self._counts) > self._max_tracked:
            self._counts.popitem(last=False)


def _where(source: tuple[str, int] | None) -> str:
    if source is None:
        return "an unknown source"
    host, port = source
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _what(offered: tuple[str, ...], credentials: Credentials | None, answered: str | None) -> str:
    if credentials is None:
        return f"did not answer the challenge ({', '.join(offered)})"
    used = _printable(credentials.algorithm or "MD5")  # RFC 7616 §3.4: MD5 when absent
    if answered is not None and answered.upper() != used.upper():
        return f"answered the {answered} challenge with {used}"
    if used.upper() not in (a.upper() for a in offered):
        return f"answered with {used}, which is not offered"
    return f"answered the {used} challenge with a wrong digest"


def _cause(offered: tuple[str, ...], credentials: Credentials | None) -> str:
    md5_offered = "MD5" in offered
    if credentials is None:
        others = [a for a in offered if a != "MD5"]
        if others:
            # Some clients read only the first challenge, some only the last.
            return f"the client may not support {' / '.join(others)}"
        return "the client may have no password for this realm"
    used = (credentials.algorithm or "MD5").upper()
    if used.startswith("MD5") and not md5_offered:
        return "the client may support only MD5"
    return "a wrong password, or a digest computed with another algorithm than it names"
