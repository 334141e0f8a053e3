"""The security log: one line per failed authentication, ban and refusal, in a fixed
format that fail2ban reads (contrib/fail2ban/filter.d/sipline.conf):

    sipline.security: auth-failed src=192.0.2.7:5060 user="alice@example.com" ua="..." reason=wrong-credentials
    sipline.security: banned src=192.0.2.7 seconds=60 offences=1 failures=10
    sipline.security: refused src=192.0.2.7:5060 user="..." ua="..." reason=relay

A banned source's refusals (reason=banned) are logged at most every 10 s each.

Values taken from the request are quoted, with quotes, backslashes and control
characters escaped, so a hostile User-Agent cannot forge a line or a field.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.core.uri import SipUri
from sipline.transport.security_log import format_src, quote, security_log

__all__ = ["add_log_file", "auth_failed", "banned", "from_user", "refused", "security_log"]

_quote = quote
_src = format_src


def _ua(request: Request) -> str:
    return _quote(request.headers.get("user-agent"))


def auth_failed(source: tuple[str, int], user: str, request: Request, reason: str) -> None:
    security_log.warning(
        "auth-failed src=%s user=%s ua=%s reason=%s",
        _src(source),
        _quote(user),
        _ua(request),
        reason,
    )


def banned(host: str, seconds: float, offences: int, failures: int) -> None:
    security_log.warning(
        "banned src=%s seconds=%d offences=%d failures=%d",
        host,
        round(seconds),
        offences,
        failures,
    )


def refused(source: tuple[str, int], user: str, request: Request, reason: str) -> None:
    security_log.warning(
        "refused src=%s user=%s ua=%s reason=%s",
        _src(source),
        _quote(user),
        _ua(request),
        reason,
    )


def from_user(request: Request) -> str:
    """The From address of `request` for the `user` field ("" when unreadable)."""
    try:
        uri = request.from_.uri
    except RemoteProtocolError:
        return ""
    return uri.aor if isinstance(uri, SipUri) else str(uri)


def add_log_file(path: Path) -> logging.Handler:
    """Also write the security lines to `path` (`[security] log_file`), with a time."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    security_log.addHandler(handler)
    return handler
