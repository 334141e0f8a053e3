"""Common Presence and Instant Messaging message format, `message/cpim` (RFC 3862).

A CPIM message is a block of message headers (From, To, DateTime, Subject, NS, ...),
an empty line, the encapsulated MIME headers (Content-Type at least), another empty
line and the content (RFC 3862 §3). Lines end in CRLF; a lone LF is accepted when
reading (RFC 3862 §3.1 asks for CRLF, some clients write LF).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["CpimError", "CpimMessage", "parse_cpim"]

CONTENT_TYPE = "message/cpim"
# RFC 3862 §3.1: Header-name = [ Name-prefix "." ] Name; Name = token-ish characters.
_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-^_`|~]+(?:\.[A-Za-z0-9!#$%&'*+\-^_`|~]+)?$")
_MAX_HEADERS = 64


class CpimError(ValueError):
    """The body is not a CPIM message; the text says why."""


@dataclass(slots=True)
class CpimMessage:
    """Message headers, MIME headers of the content, and the content itself."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    content_headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes = b""

    @classmethod
    def wrap(
        cls,
        content: bytes,
        content_type: str,
        *,
        from_: str,
        to: str,
        datetime: str | None = None,
        subject: str | None = None,
    ) -> CpimMessage:
        """A CPIM message around `content` (RFC 3862 §3.3: From and To are `<URI>`s,
        possibly with a display name)."""
        headers = [("From", from_), ("To", to)]
        if datetime is not None:
            headers.append(("DateTime", datetime))
        if subject is not None:
            headers.append(("Subject", subject))
        return cls(headers, [("Content-Type", content_type)], content)

    def get(self, name: str) -> str | None:
        low = name.lower()
        return next((v for n, v in self.headers if n.lower() == low), None)

    @property
    def from_(self) -> str | None:
        return self.get("From")

    @property
    def to(self) -> str | None:
        return self.get("To")

    @property
    def datetime(self) -> str | None:
        return self.get("DateTime")

    @property
    def content_type(self) -> str:
        low = "content-type"
        found = next((v for n, v in self.content_headers if n.lower() == low), None)
        return (found or "text/plain").strip()

    def serialize(self) -> bytes:
        out = bytearray()
        for block in (self.headers, self.content_headers):
            for name, value in block:
                _check_header(name, value)
                out += f"{name}: {value}\r\n".encode()
            out += b"\r\n"
        out += self.content
        return bytes(out)


def _check_header(name: str, value: str) -> None:
    if not _NAME.match(name):
        raise CpimError(f"bad CPIM header name {name!r}")
    if any(c in value for c in "\r\n"):
        raise CpimError(f"CPIM header {name} has a line break in its value")


def _block(data: bytes, start: int) -> tuple[list[tuple[str, str]], int]:
    """Headers from `start` up to an empty line; (headers, offset after the empty line)."""
    headers: list[tuple[str, str]] = []
    pos = start
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise CpimError("CPIM header block does not end with an empty line")
        line = data[pos:end].removesuffix(b"\r")
        pos = end + 1
        if not line:
            return headers, pos
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise CpimError("CPIM header is not UTF-8") from None
        name, colon, value = text.partition(":")
        if not colon or not _NAME.match(name):
            raise CpimError(f"bad CPIM header line {text[:40]!r}")
        headers.append((name, value.strip()))
        if len(headers) > _MAX_HEADERS:
            raise CpimError("too many CPIM headers")


def parse_cpim(data: bytes) -> CpimMessage:
    """Parse a `message/cpim` body; `CpimError` when it is not one (RFC 3862 §3)."""
    headers, pos = _block(data, 0)
    if not headers:
        raise CpimError("CPIM message has no message headers")
    names = {n.lower() for n, _ in headers}
    if "from" not in names or "to" not in names:
        # RFC 3862 §3.3: From and To are mandatory.
        raise CpimError("CPIM message lacks From or To")
    content_headers, pos = _block(data, pos)
    if not any(n.lower() == "content-type" for n, _ in content_headers):
        raise CpimError("CPIM content has no Content-Type")
    return CpimMessage(headers, content_headers, data[pos:])
