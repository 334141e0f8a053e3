"""What a user types as a call target, as the Request-URI to send.

- `sip:`/`sips:`/`tel:` URIs as written; `user@host`; a bare `user` of our own domain.
- Service URNs (RFC 5031 §4.1): `urn:service:sos`, `urn:service:sos.police`, ... sent
  as they are: RFC 6881 §9.3 (SP-/ED- requirements on the caller) puts the service URN
  in the Request-URI and lets the outbound proxy route it.
- A dialled emergency number (112, 911, ... as configured) becomes `urn:service:sos`
  (RFC 6881 §9.3: the device recognises the local dial strings and sends the URN).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sipline.core.errors import RemoteProtocolError
from sipline.core.uri import AbsoluteUri, Uri, parse_uri

__all__ = ["EMERGENCY_URN", "is_service_urn", "target_uri"]

EMERGENCY_URN = "urn:service:sos"
# RFC 5031 §4.1: service-urn = "URN:service:" service; service = top-level *("." sub-service);
# top-level and sub-service are let-dig [ *25let-dig-hyp let-dig ].
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,25}[a-z0-9])?"
_SERVICE_URN = re.compile(rf"urn:service:{_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)


def is_service_urn(text: str) -> bool:
    return _SERVICE_URN.fullmatch(text.strip()) is not None


def target_uri(target: str, domain: str, emergency_numbers: Sequence[str] = ()) -> Uri:
    """The Request-URI for `target`; ValueError (with the reason) when it is none."""
    text = target.strip()
    if text in emergency_numbers:
        return AbsoluteUri("urn", EMERGENCY_URN.removeprefix("urn:"))
    if text.lower().startswith("urn:"):
        if not is_service_urn(text):
            raise ValueError(
                f"{target!r} is not a service URN (RFC 5031: urn:service:sos, urn:service:sos.police, ...)"
            )
        return AbsoluteUri("urn", text[4:].lower())
    if not text.lower().startswith(("sip:", "sips:", "tel:")):
        text = f"sip:{text}" if "@" in text else f"sip:{text}@{domain}"
    try:
        return parse_uri(text)
    except RemoteProtocolError as exc:
        raise ValueError(f"bad target {target!r}: {exc.reason}") from None
