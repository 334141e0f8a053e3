"""SIP requests and responses: parse from bytes, serialise back (RFC 3261 §7).

Parsing is lazy by design: `parse_message` splits the start line and the header
lines and learns each field's name, nothing more. Typed views (Via, To, CSeq, ...)
are parsed on first access and cached, and a field nobody touched is written back
byte for byte. `validate()` parses everything, for linters and endpoints that want
every defect reported up front.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from sipline.core import lookup
from sipline.core.abnf import METHOD_RE, VERSION_RE
from sipline.core.auth_header import Challenge, Credentials, OtherAuth
from sipline.core.errors import RemoteProtocolError
from sipline.core.headers import Headers
from sipline.core.scanners import split_head
from sipline.core.uri import Uri, parse_uri
from sipline.core.views import (
    CSeq,
    NameAddr,
    Via,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "Message",
    "Request",
    "Response",
    "parse_message",
]

CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a peer may make us parse (memory and CPU stay bounded)."""

    max_message_bytes: int = 65535
    max_headers: int = 200
    max_line_bytes: int = 8192
    max_via: int = 64
    max_route: int = 64


DEFAULT_LIMITS = Limits()


class Message(ABC):
    """Common part of requests and responses: headers, body and the typed views."""

    __slots__ = ("_body", "_start", "headers", "version")

    def __init__(
        self,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
        start: bytes | None = None,
    ) -> None:
        self.headers = headers if headers is not None else Headers()
        self._body = body
        self.version = version
        self._start = start

    @property
    def raw_start(self) -> bytes | None:
        """The start line exactly as received (None once it changed): what a copy that
        keeps it passes as `start=`."""
        return self._start

    # -- body -----------------------------------------------------------------------
    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        """Set the body and keep Content-Length true (§20.14)."""
        self._body = value
        self.headers.set("Content-Length", str(len(value)))

    def set_body(self, value: bytes, content_type: str | None) -> None:
        if content_type is not None:
            self.headers.set("Content-Type", content_type)
        elif not value:
            self.headers.remove("Content-Type")
        self.body = value

    # -- typed views ----------------------------------------------------------------
    # Each view is parsed on first access and cached in `headers._views` (the dict is
    # read directly: these are the hot path of every proxy and transaction).
    @property
    def vias(self) -> list[Via]:
        """Every Via value, topmost first."""
        return self.headers.view("via", lookup.vias)

    @property
    def top_via(self) -> Via:
        """The topmost Via value (parsed without touching the others)."""
        h = self.headers
        v = h._views.get("via#1")
        if v is None:
            v = h._views["via#1"] = lookup.top_via(h)
        return v

    def replace_top_via(self, via: Via) -> None:
        """Rewrite the topmost Via value in place (others untouched), keeping `via` as
        the parsed top Via so that it is not parsed again (§18.2.1 received/rport)."""
        h = self.headers
        h.replace_first_value("via", str(via))
        h._views["via#1"] = via

    @property
    def to(self) -> NameAddr:
        h = self.headers
        v = h._views.get("to")
        if v is None:
            v = h._views["to"] = lookup.name_addr_field(h, "to", "To")
        return v

    @property
    def from_(self) -> NameAddr:
        h = self.headers
        v = h._views.get("from")
        if v is None:
            v = h._views["from"] = lookup.name_addr_field(h, "from", "From")
        return v

    @property
    def call_id(self) -> str:
        h = self.headers
        v = h._views.get("call-id")
        if v is None:
            v = h._views["call-id"] = lookup.call_id(h)
        return v

    @property
    def cseq(self) -> CSeq:
        h = self.headers
        v = h._views.get("cseq")
        if v is None:
            v = h._views["cseq"] = lookup.cseq(h)
        return v

    @property
    def max_forwards(self) -> int | None:
        h = self.headers
        v = h._views.get("max-forwards")
        if v is None:
            # Not cached when absent (None): recomputing that is a list scan.
            v = lookup.max_forwards(h)
            if v is not None:
                h._views["max-forwards"] = v
        return v

    @property
    def expires(self) -> int | None:
        return self.headers.view("expires", lookup.expires)

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; empty for `Contact: *` (see `contact_is_star`)."""
        return self.headers.view("contact", lookup.contacts)

    @property
    def contact_is_star(self) -> bool:
        values = self.headers.get_all("contact")
        return len(values) == 1 and values[0] == "*"

    @property
    def routes(self) -> list[NameAddr]:
        h = self.headers
        v = h._views.get("route")
        if v is None:
            v = h._views["route"] = lookup.routes(h)
        return v

    @property
    def record_routes(self) -> list[NameAddr]:
        return self.headers.view("record-route", lookup.record_routes)

    @property
    def content_type(self) -> str | None:
        ct = self.headers.get("content-type")
        return ct.split(";", 1)[0].strip().lower() if ct else None

    @property
    def content_length(self) -> int | None:
        return self.headers.view("content-length", lookup.content_length)

    def credentials(self, *, proxy: bool = False) -> list[Credentials | OtherAuth]:
        """The Authorization (or, with `proxy`, Proxy-Authorization) values, parsed."""
        key = "proxy-authorization" if proxy else "authorization"
        return self.headers.view(key, lambda h: lookup.credentials(h, key))

    def challenges(self, *, proxy: bool = False) -> list[Challenge | OtherAuth]:
        """The WWW-Authenticate (or, with `proxy`, Proxy-Authenticate) values, parsed."""
        key = "proxy-authenticate" if proxy else "www-authenticate"
        return self.headers.view(key, lambda h: lookup.challenges(h, key))

    def option_tags(self, name: str) -> list[str]:
        """Require / Proxy-Require / Supported / Unsupported option tags."""
        return lookup.option_tags(self.headers, name)

    # -- serialisation --------------------------------------------------------------
    @abstractmethod
    def _start_line(self) -> bytes: ...

    def to_bytes(self) -> bytes:
        start = self._start if self._start is not None else self._start_line()
        lines = self.headers.lines
        if not lines:
            return b"".join((start, CRLF, CRLF, self._body))
        return b"".join((start, CRLF, CRLF.join(lines), CRLF, CRLF, self._body))

    def __bytes__(self) -> bytes:
        return self.to_bytes()


class Request(Message):
    __slots__ = ("_uri", "_uri_text", "method")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
        start: bytes | None = None,
    ) -> None:
        super().__init__(headers, body, version, start)
        self.method = method
        if isinstance(uri, str):
            self._uri_text = uri
            self._uri: Uri | None = None
        else:
            self._uri = uri
            self._uri_text = str(uri)

    @property
    def uri(self) -> Uri:
        """The Request-URI, parsed on first access (400 when malformed)."""
        if self._uri is None:
            self._uri = parse_uri(self._uri_text, "Request-URI")
        return self._uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self._uri_text = str(value)
        self._start = None

    @property
    def uri_text(self) -> str:
        return self._uri_text if self._uri is None else str(self._uri)

    def _start_line(self) -> bytes:
        text = f"{self.method} {self.uri_text} {self.version}"
        return text.encode("utf-8", "surrogateescape")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri_text}>"


class Response(Message):
    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str = "",
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
        start: bytes | None = None,
    ) -> None:
        super().__init__(headers, body, version, start)
        self.status = status
        self.reason = reason

    def _start_line(self) -> bytes:
        return f"{self.version} {self.status} {self.reason}".encode("utf-8", "surrogateescape")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# --- parsing -----------------------------------------------------------------------------
def _parse_start_line(start: bytes) -> tuple[bool, str, str, str]:
    """Return (is_request, method-or-status, uri-or-reason, version)."""
    if start[:4].upper() == b"SIP/":
        version_b, sp, rest = start.partition(b" ")
        code, _, reason = rest.partition(b" ")
        version = version_b.decode("latin-1")
        if not sp or len(code) != 3 or not code.isdigit() or not b"100" <= code <= b"699":
            raise RemoteProtocolError("Malformed Status-Line")
        _check_version(version)
        return False, code.decode(), reason.decode("utf-8", "surrogateescape"), version
    parts = start.split(b" ")
    if len(parts) != 3 or not all(parts):
        # RFC 4475 §3.1.2.8-10: extra or embedded whitespace in the Request-Line.
        raise RemoteProtocolError("Malformed Request-Line")
    method_b, uri_b, version_b = parts
    method = lookup.METHOD_BY_OCTETS.get(method_b)
    if method is None:
        method = method_b.decode("latin-1")
        if not METHOD_RE.fullmatch(method):
            raise RemoteProtocolError("Malformed method in Request-Line")
    if version_b == b"SIP/2.0":
        version = "SIP/2.0"
    else:
        version = version_b.decode("latin-1")
        _check_version(version)
    uri = uri_b.decode("utf-8", "surrogateescape")
    if uri.startswith("<"):
        raise RemoteProtocolError("Request-URI must not be enclosed in <>")
    return True, method, uri, version


def _check_version(version: str) -> None:
    if version == "SIP/2.0":
        return
    m = VERSION_RE.fullmatch(version)
    if m is None:
        raise RemoteProtocolError("Malformed SIP-Version")
    if (m.group(1), m.group(2)) != ("2", "0"):
        raise RemoteProtocolError("Version Not Supported", 505)


def parse_message(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS, stream: bool = False
) -> Request | Response:
    """Parse one message. `stream=False` (a datagram): the body is what Content-Length
    says, and octets past it are dropped (§18.3); a missing Content-Length means the
    rest of the datagram. Raises only `RemoteProtocolError`."""
    if len(data) > limits.max_message_bytes:
        raise RemoteProtocolError("Message Too Large", 513)
    if data[:2] == CRLF:
        data = data.lstrip(b"\r\n")  # §7.5: ignore CRLFs before the start line
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head, rest = data[:end], data[end + 4 :]
    else:
        head, rest = _lf_fallback(data)
    start, lines, keys = split_head(head, limits.max_headers, limits.max_line_bytes)
    headers = Headers(keys, lines)
    try:
        i = keys.index("content-length")
    except ValueError:
        body = b"" if stream else rest
    else:
        # lookup.content_length, inlined for the plain case.
        value = lines[i].partition(b":")[2].strip(b" \t")
        if value.isdigit() and len(value) <= 9 and keys.count("content-length") == 1:
            declared = int(value)
        else:
            declared = lookup.content_length(headers) or 0
        if len(rest) < declared:
            raise RemoteProtocolError("Content-Length larger than the message body")
        body = rest[:declared]
    if start[:8] == b"SIP/2.0 ":  # the usual Status-Line
        code = start[8:11]
        if (
            len(code) == 3
            and code.isdigit()
            and b"100" <= code <= b"699"
            and start[11:12] in (b" ", b"")
        ):
            reason = start[12:].decode("utf-8", "surrogateescape")
            return Response(int(code), reason, headers, body, "SIP/2.0", start)
    else:
        parts = start.split(b" ")
        if len(parts) == 3:  # the usual Request-Line: a known method, SIP/2.0
            method = lookup.METHOD_BY_OCTETS.get(parts[0])
            if method is not None and parts[2] == b"SIP/2.0" and parts[1][:1] not in (b"", b"<"):
                uri = parts[1].decode("utf-8", "surrogateescape")
                return Request(method, uri, headers, body, "SIP/2.0", start)
    is_request, a, b, version = _parse_start_line(start)
    if is_request:
        return Request(a, b, headers, body, version, start)
    return Response(int(a), b, headers, body, version, start)


def _lf_fallback(data: bytes) -> tuple[bytes, bytes]:
    """Tolerate bare-LF line ends (seen from broken peers); normalise the head to CRLF."""
    end = data.find(b"\n\n")
    if end < 0 or b"\r" in data[:end]:
        raise RemoteProtocolError("Incomplete message: no empty line after the headers")
    return data[:end].replace(b"\n", CRLF), data[end + 2 :]


def header_limits_check(msg: Message, limits: Limits = DEFAULT_LIMITS) -> None:
    """Via / Route depth limits (kept apart from parsing: they need the lists split)."""
    if len(msg.vias) > limits.max_via:
        raise RemoteProtocolError("Too many Via headers", 513)
    if len(msg.headers.values("route")) > limits.max_route:
        raise RemoteProtocolError("Too many Route headers", 513)
