"""Property tests: model round trips, and mutated input raises SdpError or nothing."""

from __future__ import annotations

import contextlib
import string
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from sipline.sdp import (
    Attribute,
    Bandwidth,
    Capabilities,
    Codec,
    Connection,
    MediaCapability,
    MediaDescription,
    Origin,
    Repeat,
    RtpMap,
    SdpError,
    SessionDescription,
    TimeZone,
    Timing,
    UnknownLine,
    check_answer,
    create_answer,
    is_hold,
    negotiate,
    parse,
    serialize,
)

CORPUS = [p.read_bytes() for p in sorted((Path(__file__).parent.parent / "data").rglob("*.sdp"))]
TOKEN_ALPHABET = string.ascii_letters + string.digits + "!#$%&'*+-.^_`{|}~"
UNKNOWN_TYPES = sorted(set(string.ascii_lowercase) - set("vosiuepcbtrzkam"))
VALIDATED = {"rtpmap", "fmtp", "ptime", "maxptime", "rtcp"}

tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=8)
texts = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=12
)
integers = st.integers(0, 10**20 - 1)
typed_times = st.from_regex(r"\A[0-9]{1,6}[dhms]?\Z")
offsets = st.from_regex(r"\A-?[0-9]{1,6}[dhms]?\Z")
hostnames = st.from_regex(r"\A[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,2}\Z")


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    addrtype = draw(st.sampled_from(["IP4", "IP6", "X-NSAP"]))
    if addrtype == "IP4":
        address = draw(st.ip_addresses(v=4).map(str) | hostnames)
        ttl = draw(st.none() | st.integers(0, 255))
        count = draw(st.none() | st.integers(1, 99)) if ttl is not None else None
        return Connection(address, "IN", addrtype, ttl, count)
    if addrtype == "IP6":
        address = draw(st.ip_addresses(v=6).map(str) | hostnames)
        return Connection(address, "IN", addrtype, None, draw(st.none() | st.integers(1, 99)))
    return Connection(draw(tokens), draw(tokens), addrtype)


origins = st.builds(
    Origin,
    username=tokens,
    session_id=tokens,
    session_version=integers,
    address=hostnames,
    nettype=st.just("IN"),
    addrtype=st.just("IP4"),
)
bandwidths = st.builds(Bandwidth, bwtype=tokens, bandwidth=integers)
attributes = st.builds(
    Attribute, name=tokens.filter(lambda n: n not in VALIDATED), value=st.none() | texts
)
unknown_lines = st.builds(UnknownLine, type=st.sampled_from(UNKNOWN_TYPES), value=texts)
rtpmaps = st.builds(
    RtpMap,
    payload_type=st.integers(0, 127),
    encoding_name=tokens.filter(lambda n: "/" not in n),
    clock_rate=st.integers(1, 10**9),
    channels=st.none() | st.integers(1, 8),
)
timings = st.builds(
    Timing,
    start=integers,
    stop=integers,
    repeats=st.lists(
        st.builds(
            Repeat,
            interval=typed_times,
            duration=typed_times,
            offsets=st.lists(typed_times, min_size=1, max_size=3),
        ),
        max_size=2,
    ),
)


@st.composite
def media_descriptions(draw: st.DrawFn) -> MediaDescription:
    rtp = draw(st.booleans())
    if rtp:
        proto = draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF"]))
        formats = [str(pt) for pt in draw(st.lists(st.integers(0, 127), max_size=5))]
    else:
        proto = "/".join(
            draw(st.lists(tokens.filter(lambda t: "RTP" not in t.upper()), min_size=1, max_size=3))
        )
        formats = draw(st.lists(tokens, max_size=3))
    attrs = draw(st.lists(attributes, max_size=4))
    if rtp:
        attrs += [Attribute("rtpmap", r.value()) for r in draw(st.lists(rtpmaps, max_size=3))]
        attrs += draw(st.lists(st.builds(Attribute, st.just("ptime"), st.just("20")), max_size=1))
    return MediaDescription(
        media=draw(tokens),
        port=draw(st.integers(0, 65535)),
        proto=proto,
        formats=formats,
        port_count=draw(st.none() | st.integers(1, 10)),
        title=draw(st.none() | texts),
        connections=draw(st.lists(connections(), max_size=2)),
        bandwidths=draw(st.lists(bandwidths, max_size=2)),
        key=draw(st.none() | texts),
        attributes=draw(st.permutations(attrs)),
        unknown_lines=draw(st.lists(unknown_lines, max_size=2)),
    )


session_descriptions = st.builds(
    SessionDescription,
    origin=origins,
    session_name=texts,
    information=st.none() | texts,
    uri=st.none() | texts,
    emails=st.lists(texts, max_size=2),
    phones=st.lists(texts, max_size=2),
    connection=st.none() | connections(),
    bandwidths=st.lists(bandwidths, max_size=2),
    timings=st.lists(timings, max_size=2),
    time_zones=st.lists(st.builds(TimeZone, adjustment_time=integers, offset=offsets), max_size=2),
    key=st.none() | texts,
    attributes=st.lists(attributes, max_size=4),
    media=st.lists(media_descriptions(), max_size=3),
    unknown_lines=st.lists(unknown_lines, max_size=2),
)


@given(session_descriptions)
def test_parse_serialize_round_trip(sd: SessionDescription) -> None:
    data = serialize(sd)
    assert parse(data) == sd
    assert serialize(parse(data)) == data


CAPS = Capabilities(
    "192.0.2.1",
    [
        MediaCapability("audio", 4000, [Codec("PCMU", 8000), Codec("iLBC", 8000)], ptime_ms=20),
        MediaCapability("video", 5000, [Codec("H261", 90000)], telephone_event=True),
    ],
)


def _exercise(sd: SessionDescription) -> None:
    """Everything reachable from a parsed description must work without raising."""
    assert parse(serialize(sd)) == sd
    for media in sd.media:
        media.codecs()
        media.telephone_events()
        for pt in media.payload_types():
            media.fmtp(pt)
        _ = (media.ptime_ms, media.maxptime_ms, media.rtcp, sd.effective_direction(media))
        is_hold(sd, media)
    answer = create_answer(sd, CAPS)
    assert check_answer(sd, answer) == []
    assert parse(serialize(answer)) == answer
    negotiate(answer, sd)
    negotiate(sd, answer)


mutations = st.lists(
    st.tuples(st.sampled_from("rid"), st.integers(0, 10_000), st.binary(min_size=1, max_size=4)),
    min_size=1,
    max_size=4,
)
INTERESTING = b" \r\n=:/0123456789.aceimorstvIPNRTAV-\x00\xff"


def _mutate(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    for op, where, chunk in ops:
        at = where % (len(data) + 1)
        if op == "r":
            data = data[:at] + chunk + data[at + len(chunk) :]
        elif op == "i":
            data = data[:at] + chunk + data[at:]
        else:
            data = data[:at] + data[at + len(chunk) :]
    return data


@given(st.sampled_from(CORPUS), mutations)
@example(CORPUS[0], [("i", 0, b"\xef\xbb\xbf")])
def test_mutated_input_raises_only_sdp_error(
    seed: bytes, ops: list[tuple[str, int, bytes]]
) -> None:
    data = _mutate(seed, ops)
    try:
        sd = parse(data)
    except SdpError:
        return
    _exercise(sd)


@given(
    st.sampled_from(CORPUS),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(INTERESTING)), min_size=1, max_size=6
    ),
)
def test_structured_byte_flips_raise_only_sdp_error(
    seed: bytes, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(seed)
    for where, byte in flips:
        data[where % len(data)] = byte
    try:
        sd = parse(bytes(data))
    except SdpError:
        return
    _exercise(sd)


@given(st.sampled_from(CORPUS), st.data())
def test_line_shuffles_raise_only_sdp_error(seed: bytes, data: st.DataObject) -> None:
    lines = seed.split(b"\r\n")
    shuffled = data.draw(st.permutations(lines))
    dropped = data.draw(st.lists(st.integers(0, len(lines) - 1), max_size=2))
    kept = [line for i, line in enumerate(shuffled) if i not in dropped]
    try:
        sd = parse(b"\r\n".join(kept))
    except SdpError:
        return
    _exercise(sd)


@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_sdp_error(text: str) -> None:
    with contextlib.suppress(SdpError):
        parse(text)
