"""Whole-message validation and the response an RFC 3261 server would give.

The parser is lazy; `validate` parses every header sipline understands and the
rules that tie them together (§8.1.1 mandatory headers, §8.1.1.5 CSeq method,
§19.1.1 Request-URI components), raising `RemoteProtocolError` for the first
defect. `expected_response` goes one step further for well-formed requests and says
what a server would answer on semantic grounds (RFC 4475 §3.3's cases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import DEFAULT_LIMITS, Limits, Message, Request, header_limits_check
from sipline.core.params import parse_params, split_commas
from sipline.core.uri import SipUri, TelUri

__all__ = ["SUPPORTED_OPTION_TAGS", "Verdict", "expected_response", "validate"]

# Option tags sipline implements (RFC 3327 path, RFC 5626 outbound, RFC 4028 timer,
# RFC 3891 replaces, RFC 4488 norefersub, RFC 3262 100rel is not implemented).
SUPPORTED_OPTION_TAGS = frozenset({"path", "outbound", "timer", "replaces", "norefersub", "gruu"})

# rfc1123-date = wkday "," SP date1 SP time SP "GMT"   (§25.1; only GMT is legal)
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT"
)
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+[ \t]*/[ \t]*[A-Za-z0-9\-.!%*_+`'~]+")
_KNOWN_SCHEMES = ("sip", "sips", "tel")
_ENDPOINT_BODY_TYPES = frozenset({"application/sdp", "text/plain", "message/cpim"})


def validate(msg: Message, limits: Limits = DEFAULT_LIMITS) -> None:
    """Parse every known header of `msg`; raise `RemoteProtocolError` on the first defect."""
    header_limits_check(msg, limits)
    msg.to  # noqa: B018  (each access parses and checks that header)
    msg.from_  # noqa: B018
    msg.call_id  # noqa: B018
    cseq = msg.cseq
    msg.max_forwards  # noqa: B018
    msg.expires  # noqa: B018
    for contact in msg.contacts:
        contact.expires  # noqa: B018
        contact.q  # noqa: B018
        contact.uri  # noqa: B018
    for route in (*msg.routes, *msg.record_routes):
        route.uri  # noqa: B018
    msg.content_length  # noqa: B018
    for name in ("require", "proxy-require", "supported", "unsupported", "allow"):
        msg.option_tags(name)
    date = msg.headers.get("date")
    if date is not None and not _DATE_RE.fullmatch(date):
        raise RemoteProtocolError("Malformed Date header (must be an RFC 1123 date in GMT)")
    ctype = msg.headers.get("content-type")
    if ctype is not None:
        _check_media_type(ctype)
    if isinstance(msg, Request):
        uri = msg.uri
        if isinstance(uri, SipUri) and uri.headers:
            # §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 'escruri').
            raise RemoteProtocolError("Request-URI must not contain headers")
        if cseq.method != msg.method:
            raise RemoteProtocolError("CSeq method does not match the request method")
        msg.to.uri  # noqa: B018
        msg.from_.uri  # noqa: B018


def _check_media_type(value: str) -> None:
    m = _MEDIA_TYPE_RE.match(value)
    if m is None:
        raise RemoteProtocolError("Malformed Content-Type header")
    _, end = parse_params(value, m.end(), "Content-Type")
    if end != len(value):
        raise RemoteProtocolError("Malformed Content-Type header")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a server in `role` would answer a well-formed request, and why."""

    status: int
    reason: str
    role: str  # "any", "proxy", "endpoint", "registrar"


def expected_response(msg: Request) -> Verdict | None:
    """Semantic checks on a request that already passed `validate` (RFC 4475 §3.3).

    Returns None when a server would process the request normally.
    """
    uri = msg.uri
    if uri.scheme.lower() not in _KNOWN_SCHEMES:
        return Verdict(416, "Unsupported URI Scheme", "any")
    unsupported = [
        t for t in msg.option_tags("proxy-require") if t.lower() not in SUPPORTED_OPTION_TAGS
    ]
    if unsupported:
        return Verdict(420, f"Bad Extension: {', '.join(unsupported)}", "proxy")
    unsupported = [t for t in msg.option_tags("require") if t.lower() not in SUPPORTED_OPTION_TAGS]
    if unsupported:
        return Verdict(420, f"Bad Extension: {', '.join(unsupported)}", "endpoint")
    if msg.max_forwards == 0 and msg.method != "REGISTER":
        return Verdict(483, "Too Many Hops", "proxy")
    if msg.method == "REGISTER":
        for what, value in (("To", msg.to), ("From", msg.from_)):
            if not isinstance(value.uri, SipUri):
                return Verdict(400, f"{what} must be a SIP or SIPS URI in REGISTER", "registrar")
    for contact in msg.contacts:
        if not isinstance(contact.uri, SipUri | TelUri) and msg.method == "REGISTER":
            return Verdict(400, "Unsupported Contact URI scheme", "registrar")
    ctype = msg.content_type
    known = ctype is None or ctype in _ENDPOINT_BODY_TYPES or ctype.startswith("multipart/")
    if msg.body and not known:
        return Verdict(415, "Unsupported Media Type", "endpoint")
    accept = msg.headers.get("accept")
    if msg.body and ctype and accept is not None and not _accepts(accept, ctype):
        return Verdict(406, "Not Acceptable", "endpoint")
    for auth in msg.headers.get_all("authorization") + msg.headers.get_all("proxy-authorization"):
        scheme = auth.split(None, 1)[0] if auth.strip() else ""
        if scheme.lower() != "digest":
            return Verdict(401, "Unauthorized (unknown authorization scheme)", "registrar")
    return None


def _accepts(accept: str, ctype: str) -> bool:
    for element in split_commas(accept, "Accept") if accept else []:
        media = element.split(";", 1)[0].strip().lower()
        main, _, sub = media.partition("/")
        if media in (ctype, "*/*") or (sub == "*" and ctype.startswith(main + "/")):
            return True
    return not accept
