"""Fuzz the stream framer: only `RemoteProtocolError` escapes, memory stays bounded.

An input is two control octets followed by a byte stream. The first control
octet picks the limits (the defaults or small ones, so the limit paths are
reached with short inputs) and the second seeds the chunking: the stream is fed
to one `StreamFramer` in random-sized pieces and to another in one piece.

Rules checked:

* `feed` returns or raises `RemoteProtocolError`, nothing else;
* after a successful `feed`, `buffered` is within `max_buffered_bytes`;
* after an error the framer stays failed: the next `feed` raises again and
  holds no more than the limits allow;
* chunking does not change the outcome: the same messages and pings when no
  error occurs, an error with the same status otherwise;
* every framed message is within the header and body limits, and parsing it
  (`parse_message(..., stream=True)`) raises nothing but `RemoteProtocolError`.

With atheris::

    python fuzz/fuzz_framer.py -runs=100000

Without atheris, or with the driver's flags::

    python fuzz/fuzz_framer.py --iterations 100000
    python fuzz/fuzz_framer.py --seconds 300 --seed 1
"""

from __future__ import annotations

import contextlib
import random
import re
import sys
from collections.abc import Sequence

from driver import atheris_corpus_dir, load_seeds, mutate, run, wants_fallback

from sipline.core.errors import RemoteProtocolError
from sipline.core.framing import FramingLimits, StreamFramer
from sipline.core.message import parse_message

SMALL_LIMITS = FramingLimits(
    max_header_bytes=1024, max_body_bytes=512, max_line_bytes=256, max_buffered_bytes=1536
)
DEFAULT_LIMITS = FramingLimits()
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")


class Outcome:
    __slots__ = ("error", "messages", "pings", "pongs")

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.pings = 0
        self.pongs = 0
        self.error: RemoteProtocolError | None = None


def _feed_all(framer: StreamFramer, chunks: Sequence[bytes]) -> Outcome:
    limits = framer.limits
    out = Outcome()
    for chunk in chunks:
        try:
            out.messages.extend(framer.feed(chunk))
        except RemoteProtocolError as exc:
            out.error = exc
            break
        out.pings += framer.take_pings()
        if framer.buffered > limits.max_buffered_bytes:
            raise AssertionError(f"{framer.buffered} bytes buffered past the limit")
    out.pongs = framer.pongs
    if out.error is not None:
        try:
            framer.feed(b"OPTIONS sip:a SIP/2.0\r\n")
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("a failed framer accepted more data")
        if framer.buffered > limits.max_buffered_bytes:
            raise AssertionError(f"{framer.buffered} bytes kept after an error")
    return out


def _chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    i = 0
    while i < len(data):
        step = rng.choice((1, 1, 2, 3, 7, 16, 64, 500, 4096))
        out.append(data[i : i + step])
        i += step
    return out


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    limits = SMALL_LIMITS if data[0] & 1 else DEFAULT_LIMITS
    stream = data[2:]
    chunked = _feed_all(StreamFramer(limits), _chunks(stream, data[1]))
    whole = _feed_all(StreamFramer(limits), [stream])
    if (chunked.error is None) != (whole.error is None):
        raise AssertionError(
            f"chunking changed the outcome: chunked={chunked.error!r} whole={whole.error!r}"
        )
    if chunked.error is not None and whole.error is not None:
        if chunked.error.status != whole.error.status:
            raise AssertionError(
                f"chunking changed the error: chunked={chunked.error!r} whole={whole.error!r}"
            )
    elif chunked.messages != whole.messages or chunked.pings != whole.pings:
        raise AssertionError("chunking changed the messages or the pings")
    for message in chunked.messages:
        match = _END_OF_HEADERS.search(message)
        header = message[: match.end()] if match is not None else message
        if len(header) > limits.max_header_bytes:
            raise AssertionError("a framed header block is past max_header_bytes")
        if len(message) - len(header) > limits.max_body_bytes:
            raise AssertionError("a framed body is past max_body_bytes")
        with contextlib.suppress(RemoteProtocolError):
            parse_message(message, stream=True)


def _generate(rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    parts: list[bytes] = [bytes([rng.randrange(256), rng.randrange(256)])]
    for _ in range(rng.choice((1, 1, 2, 3))):
        parts.append(rng.choice((b"", b"", b"\r\n", b"\r\n\r\n", b"\n", b"\r")))
        message = rng.choice(corpus)
        parts.append(mutate(rng, message, corpus) if rng.random() < 0.8 else message)
    return b"".join(parts)


def main(argv: list[str]) -> int:
    try:
        import atheris  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        atheris = None
    if atheris is None or wants_fallback(argv[1:]):
        return run("fuzz_framer", test_one_input, _generate, argv[1:])
    if not any(not a.startswith("-") for a in argv[1:]):
        seeds = [b"\x00\x00" + s for s in load_seeds()] + [b"\x01\x07" + s for s in load_seeds()]
        argv = [*argv, atheris_corpus_dir("fuzz_framer", seeds)]
    atheris.instrument_all()
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
