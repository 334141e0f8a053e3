"""Fuzz the message parser: parse or raise `RemoteProtocolError`, nothing else.

The rule, as in h11's fuzzer: for any octets, `parse_message` followed by
`validate` either succeeds or raises `RemoteProtocolError`. A message that parsed
is also serialised, parsed and validated again, and the proxy edits (prepend a
Via, replace Max-Forwards, pop the top Via) are applied and serialised; none of
that may raise anything but `RemoteProtocolError` either.

With atheris (coverage guided, libFuzzer flags)::

    python fuzz/fuzz_parser.py -runs=100000
    python fuzz/fuzz_parser.py -max_total_time=300

Without atheris, or with any of the driver's flags (random mutation)::

    python fuzz/fuzz_parser.py --iterations 100000
    python fuzz/fuzz_parser.py --seconds 300 --seed 1

`--strict-roundtrip` adds a stronger rule: a message that passed `validate` must
pass it again after a serialise/parse round trip.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence

from driver import atheris_corpus_dir, load_seeds, mutate, run, wants_fallback

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Message, parse_message
from sipline.core.validate import validate

STRICT_ROUNDTRIP = False

_PROXY_VIA = "SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bKfuzz"


def _parse(data: bytes) -> Message | None:
    """Parse and validate; None when the parser rejects the input."""
    try:
        msg = parse_message(data)
        validate(msg)
    except RemoteProtocolError:
        return None
    return msg


def _proxy_edits(msg: Message) -> None:
    try:
        max_forwards = msg.max_forwards
        msg.top_via  # noqa: B018  (parses the top Via)
        msg.headers.add("Via", _PROXY_VIA, first=True)
        if max_forwards:
            msg.headers.set("Max-Forwards", str(max_forwards - 1))
        msg.headers.pop_first_value("via")
        msg.headers.pop_first_value("route")
    except RemoteProtocolError:
        return
    _parse(msg.to_bytes())


def test_one_input(data: bytes) -> None:
    msg = _parse(data)
    if msg is None:
        return
    wire = msg.to_bytes()
    if STRICT_ROUNDTRIP:
        try:
            validate(parse_message(wire))
        except RemoteProtocolError as exc:
            raise AssertionError(f"valid message rejected after a round trip: {exc}") from exc
    else:
        _parse(wire)
    _proxy_edits(msg)


def _generate(rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    return mutate(rng, rng.choice(corpus), corpus)


def main(argv: list[str]) -> int:
    global STRICT_ROUNDTRIP  # noqa: PLW0603  (a module flag the target reads cheaply)
    if "--strict-roundtrip" in argv:
        STRICT_ROUNDTRIP = True
        argv = [a for a in argv if a != "--strict-roundtrip"]
    try:
        import atheris  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        atheris = None
    if atheris is None or wants_fallback(argv[1:]):
        return run("fuzz_parser", test_one_input, _generate, argv[1:])
    if not any(not a.startswith("-") for a in argv[1:]):
        argv = [*argv, atheris_corpus_dir("fuzz_parser", load_seeds())]
    atheris.instrument_all()
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
