"""Stream framing: cut a TCP/TLS byte stream into whole SIP messages (sans-I/O).

A stream has no datagram boundaries, so RFC 3261 §18.3 makes Content-Length
mandatory on it: the header block ends at the first empty line and the body is
exactly Content-Length bytes. Between messages a peer may send CRLFs: RFC 3261
§7.5 says to ignore them, and RFC 5626 §3.5.1 gives them meaning as keep-alives
(a double CRLF "ping" that the receiver answers with a single CRLF "pong").

The framer only finds boundaries: it never parses the start line or any header
but Content-Length, so the message layer keeps the one true parser. Every limit
holds before the data is kept: a peer sending an endless header line is cut off
once the line passes `max_line_bytes`, whatever the chunking.

Usage::

    framer = StreamFramer()
    for message in framer.feed(chunk):   # may raise RemoteProtocolError
        handle(message)
    for _ in range(framer.take_pings()):
        write(b"\\r\\n")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from sipline.core.errors import RemoteProtocolError
from sipline.core.scanners import content_length_of, find_head_end

__all__ = ["FramingLimits", "StreamFramer"]


@dataclass(slots=True, frozen=True)
class FramingLimits:
    """Bounds on what one peer may make us buffer.

    `max_buffered_bytes` bounds what is kept between two `feed` calls; it must be
    at least `max_header_bytes + max_body_bytes` for every allowed message to fit.
    """

    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 256 * 1024
    max_line_bytes: int = 8 * 1024
    max_buffered_bytes: int = 16 * 1024 + 256 * 1024


class StreamFramer:
    """Incremental framer for one stream connection.

    `feed` returns the complete messages (header block plus exactly
    Content-Length body bytes, as `bytes`) found so far. Keep-alive pings seen
    between messages are counted; `take_pings` returns and clears the count so
    the transport can answer each with a CRLF pong. After a `RemoteProtocolError`
    the stream is unrecoverable: every later `feed` raises the same error, and
    `failed_header` holds the offending header block when it was complete (enough
    for the transport to try a 400 before closing).
    """

    __slots__ = (
        "_buf",
        "_error",
        "_limits",
        "_message_len",
        "_pings",
        "_scan_from",
        "failed_header",
        "pongs",
    )

    def __init__(self, limits: FramingLimits | None = None) -> None:
        self._limits = limits if limits is not None else FramingLimits()
        self._buf = bytearray()
        # Total length of the message at the buffer start once its header is known.
        self._message_len: int | None = None
        # Where to resume looking for the end of headers (no rescanning of old data).
        self._scan_from = 0
        self._pings = 0
        self._error: RemoteProtocolError | None = None
        self.failed_header: bytes | None = None
        # Lone CRLFs seen between messages: RFC 5626 pongs (counted, never answered).
        self.pongs = 0

    @property
    def limits(self) -> FramingLimits:
        return self._limits

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buf)

    def take_pings(self) -> int:
        """Return how many double-CRLF pings arrived since the last call."""
        pings, self._pings = self._pings, 0
        return pings

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages they complete, in order."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        messages: list[bytes] = []
        pos = 0
        try:
            while True:
                if self._message_len is None:
                    pos, at_message = self._skip_keepalives(pos)
                    if not at_message:
                        break
                    self._message_len = self._find_message_length(pos)
                    if self._message_len is None:
                        break
                end = pos + self._message_len
                if end > len(buf):
                    break
                messages.append(bytes(buf[pos:end]))
                pos = end
                self._message_len = None
                self._scan_from = pos
        except RemoteProtocolError as exc:
            self._error = exc
            buf.clear()
            raise
        finally:
            if pos:
                del buf[:pos]
                self._scan_from = max(0, self._scan_from - pos)
        if len(buf) > self._limits.max_buffered_bytes:
            self._fail(RemoteProtocolError("Message Too Large", 513))
        return messages

    def _skip_keepalives(self, pos: int) -> tuple[int, bool]:
        """Step over CRLFs before a message, counting pings and pongs.

        Returns the new position and whether a message starts there. A trailing
        CR, CRLF or CRLF CR may be the start of a ping split across reads, so it
        stays buffered until the next bytes tell.
        """
        buf = self._buf
        size = len(buf)
        while pos < size:
            rest = size - pos
            if buf.startswith(b"\r\n\r\n", pos):
                self._pings += 1
                pos += 4
            elif buf.startswith(b"\r\n", pos):
                if rest == 2 or (rest == 3 and buf[pos + 2] == 0x0D):
                    break
                self.pongs += 1
                pos += 2
            elif buf[pos] == 0x0D and rest == 1:
                break
            elif buf[pos] == 0x0A:
                pos += 1  # a stray LF: tolerated like a CRLF, meaning nothing
            else:
                self._scan_from = max(self._scan_from, pos)
                return pos, True
        return pos, False

    def _find_message_length(self, start: int) -> int | None:
        """Length of the message starting at `start` once its header block is in."""
        buf = self._buf
        limits = self._limits
        header_end = find_head_end(buf, max(start, self._scan_from - 3))
        if header_end < 0:
            pending = len(buf) - start
            if pending > limits.max_header_bytes:
                self._fail(RemoteProtocolError("Message Too Large", 513))
            # The lines that grew since the last look: from the start of the line
            # that was open then (shorter than the limit, or we had failed) to the
            # end, so a long line is caught whether or not it has ended yet.
            new = max(start, self._scan_from)
            line_start = buf.rfind(b"\n", start, new) + 1 or start
            if len(buf) - line_start > limits.max_line_bytes and (
                max(map(len, buf[line_start:].split(b"\n"))) > limits.max_line_bytes
            ):
                self._fail(RemoteProtocolError("Header Line Too Long", 513))
            self._scan_from = len(buf)
            return None
        header = bytes(buf[start:header_end])
        if len(header) > limits.max_header_bytes:
            self._fail(RemoteProtocolError("Message Too Large", 513))
        # Only a long block can hold a long line: the common case skips the split.
        if len(header) > limits.max_line_bytes and (
            max(map(len, header.split(b"\n"))) > limits.max_line_bytes
        ):
            self._fail(RemoteProtocolError("Header Line Too Long", 513))
        body_len = self._content_length(header)
        if body_len > limits.max_body_bytes:
            self.failed_header = header
            self._fail(RemoteProtocolError("Request Entity Too Large", 413))
        return len(header) + body_len

    def _content_length(self, header: bytes) -> int:
        """RFC 3261 §18.3: Content-Length is mandatory on streams (`scan.content_length_of`)."""
        try:
            return content_length_of(header)
        except RemoteProtocolError:
            self.failed_header = header
            raise

    def _fail(self, error: RemoteProtocolError) -> NoReturn:
        raise error
