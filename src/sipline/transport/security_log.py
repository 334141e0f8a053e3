"""The security log's one line format, shared by every layer that refuses a source
(transport: connection limits; runtime: flood control; server: authentication, relaying).

    sipline.security: EVENT src=192.0.2.7:5060 user="alice@example.com" ua="..." reason=WORD

fail2ban reads it (contrib/fail2ban/filter.d/sipline.conf). Values taken from the wire
are quoted, with quotes, backslashes and control characters escaped and cut at
`MAX_FIELD` characters, so a hostile User-Agent cannot forge a line or a field.
"""

from __future__ import annotations

import logging

__all__ = ["MAX_FIELD", "format_src", "quote", "security_event", "security_log"]

security_log = logging.getLogger("sipline.security")
MAX_FIELD = 128  # characters of a quoted field kept (a long User-Agent is cut)


def quote(value: str | None) -> str:
    text = (value or "")[:MAX_FIELD]
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_src(source: tuple[str, int]) -> str:
    host, port = source
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def security_event(
    event: str,
    source: tuple[str, int],
    user: str | None,
    ua: str | None,
    reason: str,
    **extra: object,
) -> None:
    """One line of the security log; `reason` is one word (hyphens for spaces), `extra`
    plain `key=value` figures after it."""
    tail = "".join(f" {k}={v}" for k, v in extra.items())
    security_log.warning(
        "%s src=%s user=%s ua=%s reason=%s%s",
        event,
        format_src(source),
        quote(user),
        quote(ua),
        reason.replace(" ", "-"),
        tail,
    )
