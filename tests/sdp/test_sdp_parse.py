"""Parsing and serializing: the RFC 4317 and RFC 5118 corpora, views, leniency and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipline.sdp import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    Repeat,
    RtpMap,
    SdpError,
    SessionDescription,
    TimeZone,
    UnknownLine,
    parse,
    parse_fmtp_params,
    serialize,
    serialize_str,
    static_rtpmap,
)

DATA = Path(__file__).parent.parent / "data"
RFC4317 = sorted((DATA / "rfc4317-sdp").glob("*.sdp"))
RFC5118_SDP = ["ipv6-in-sdp", "mult-ip-in-sdp", "ipv4-mapped-ipv6"]


def _sdp_body(name: str) -> bytes:
    message = (DATA / "rfc5118" / "wire" / f"{name}.dat").read_bytes()
    return message.split(b"\r\n\r\n", 1)[1]


def test_corpus_is_complete() -> None:
    assert len(RFC4317) == 54


@pytest.mark.parametrize("path", RFC4317, ids=lambda p: p.name)
def test_rfc4317_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    sd = parse(data)
    assert serialize(sd) == data
    assert parse(serialize(sd)) == sd
    assert parse(data.decode()) == sd


@pytest.mark.parametrize("path", RFC4317, ids=lambda p: p.name)
def test_rfc4317_bare_lf_parses_the_same(path: Path) -> None:
    data = path.read_bytes()
    assert parse(data.replace(b"\r\n", b"\n")) == parse(data)


@pytest.mark.parametrize("name", RFC5118_SDP)
def test_rfc5118_bodies_parse_and_round_trip(name: str) -> None:
    body = _sdp_body(name)
    sd = parse(body)
    assert serialize(sd) == body
    assert sd.session_name == "" or sd.session_name.strip()


def test_rfc5118_ipv6_connection() -> None:
    sd = parse(_sdp_body("ipv6-in-sdp"))
    assert sd.connection == Connection("2001:db8::20", "IN", "IP6")
    assert sd.origin.addrtype == "IP6"
    assert sd.origin.session_id == "971731711378798081"
    assert sd.media[0].codec(2) == RtpMap(2, "G726-32", 8000)  # 2 is not static any more
    assert static_rtpmap(2) is None


def test_rfc5118_per_media_connections() -> None:
    sd = parse(_sdp_body("mult-ip-in-sdp"))
    assert sd.session_name == ""  # empty s= is tolerated
    assert sd.connection is None
    audio, video = sd.media
    assert sd.connection_for(audio) == Connection("192.0.2.1")
    assert sd.connection_for(video) == Connection("2001:db8::1", addrtype="IP6")
    assert audio.codecs() == [RtpMap(0, "PCMU", 8000)]  # static type, no rtpmap line


def test_rfc5118_ipv4_mapped() -> None:
    sd = parse(_sdp_body("ipv4-mapped-ipv6"))
    assert sd.connection is not None
    assert sd.connection.address == "::ffff:192.0.2.2"


FULL = (
    "v=0\r\n"
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    "s=SDP Seminar\r\n"
    "i=A Seminar on the session description protocol\r\n"
    "u=http://www.example.com/seminars/sdp.pdf\r\n"
    "e=j.doe@example.com (Jane Doe)\r\n"
    "p=+1 617 555-6011\r\n"
    "c=IN IP4 224.2.17.12/127\r\n"
    "b=CT:128\r\n"
    "t=2873397496 2873404696\r\n"
    "r=7d 1h 0 25h\r\n"
    "z=2882844526 -1h 2898848070 0\r\n"
    "k=prompt\r\n"
    "a=recvonly\r\n"
    "a=tool:sipline\r\n"
    "m=audio 49170 RTP/AVP 0 101\r\n"
    "i=voice\r\n"
    "c=IN IP6 ff15::101/3\r\n"
    "b=AS:64\r\n"
    "k=clear:secret\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "a=maxptime:40\r\n"
    "a=rtcp:53020 IN IP4 126.16.64.4\r\n"
    "a=x-unknown:kept as is\r\n"
    "a=sendrecv\r\n"
    "m=video 51372/2 RTP/AVP 99\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
    "m=application 9 TCP/MSRP *\r\n"
    "a=accept-types:text/plain\r\n"
)


def test_every_line_type() -> None:
    sd = parse(FULL)
    assert serialize_str(sd) == FULL
    assert sd.origin == Origin("jdoe", "2890844526", 2890842807, "10.47.16.5")
    assert sd.information == "A Seminar on the session description protocol"
    assert sd.uri == "http://www.example.com/seminars/sdp.pdf"
    assert sd.emails == ["j.doe@example.com (Jane Doe)"]
    assert sd.phones == ["+1 617 555-6011"]
    assert sd.connection == Connection("224.2.17.12", ttl=127)
    assert sd.bandwidths == [Bandwidth("CT", 128)]
    assert sd.timings[0].start == 2873397496
    assert sd.timings[0].repeats == [Repeat("7d", "1h", ["0", "25h"])]
    assert sd.time_zones == [TimeZone(2882844526, "-1h"), TimeZone(2898848070, "0")]
    assert sd.key == "prompt"
    assert sd.direction is Direction.RECVONLY
    assert sd.attribute("tool") == "sipline"

    audio, video, app = sd.media
    assert audio.title == "voice"
    assert audio.connection == Connection("ff15::101", addrtype="IP6", count=3)
    assert audio.bandwidths == [Bandwidth("AS", 64)]
    assert audio.key == "clear:secret"
    assert audio.payload_types() == [0, 101]
    assert [c.encoding_name for c in audio.codecs()] == ["PCMU", "telephone-event"]
    assert audio.telephone_events() == [RtpMap(101, "telephone-event", 8000)]
    assert audio.fmtp(101) == "0-15"
    assert audio.fmtp(0) is None
    assert audio.ptime_ms == 20.0
    assert audio.maxptime_ms == 40.0
    assert audio.rtcp is not None
    assert (audio.rtcp.port, audio.rtcp.address) == (53020, "126.16.64.4")
    assert Attribute("x-unknown", "kept as is") in audio.attributes
    assert audio.direction is Direction.SENDRECV
    assert sd.effective_direction(audio) is Direction.SENDRECV

    assert video.port_count == 2
    assert video.direction is None
    assert sd.effective_direction(video) is Direction.RECVONLY  # inherited from session
    assert video.codec(99) == RtpMap(99, "h263-1998", 90000)
    assert video.ptime_ms is None and video.rtcp is None

    assert app.formats == ["*"]
    assert not app.is_rtp
    assert app.payload_types() == [] and app.codecs() == [] and app.rtpmaps() == {}
    assert app.fmtp(0) is None


def test_ip4_multicast_ttl_and_count() -> None:
    sd = parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 224.2.1.1/127/3\r\nt=0 0\r\n")
    assert sd.connection == Connection("224.2.1.1", ttl=127, count=3)
    assert serialize_str(sd).endswith("c=IN IP4 224.2.1.1/127/3\r\nt=0 0\r\n")


def test_unknown_lines_are_kept_in_order() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nx=one\r\ny=two\r\n"
        "m=audio 1 RTP/AVP 0\r\na=foo\r\nq=three\r\n"
    )
    sd = parse(text)
    assert sd.unknown_lines == [UnknownLine("x", "one"), UnknownLine("y", "two")]
    assert sd.media[0].unknown_lines == [UnknownLine("q", "three")]
    assert serialize_str(sd) == text


def test_extension_address_type_is_opaque() -> None:
    sd = parse("v=0\r\no=- 1 1 ATM NSAP 47.0005\r\ns=-\r\nc=ATM NSAP 47.0005/x/y\r\n")
    assert sd.connection == Connection("47.0005/x/y", "ATM", "NSAP")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # runs of spaces between fields, trailing space on m=
        ("m=audio  49170 RTP/AVP 0 8 ", "m=audio 49170 RTP/AVP 0 8"),
        # leading zeros in numbers
        ("m=audio 049170 RTP/AVP 0", "m=audio 49170 RTP/AVP 0"),
    ],
)
def test_lenient_input_comes_back_canonical(text: str, canonical: str) -> None:
    head = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n"
    assert serialize_str(parse(head + text + "\r\n")) == head + canonical + "\r\n"


def test_out_of_order_lines_are_accepted_and_reordered() -> None:
    sd = parse("v=0\r\ns=x\r\no=- 1 1 IN IP4 h\r\nt=0 0\r\nc=IN IP4 h\r\n")
    assert serialize_str(sd) == "v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nc=IN IP4 h\r\nt=0 0\r\n"


def test_missing_t_and_trailing_blank_lines_tolerated() -> None:
    sd = parse(b"v=0\no=- 1 1 IN IP4 h\ns=\n\n\n")
    assert sd.timings == []
    assert serialize(sd) == b"v=0\r\no=- 1 1 IN IP4 h\r\ns=\r\n"


def test_last_line_without_line_end() -> None:
    assert parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-").session_name == "-"


def test_invalid_utf8_survives_a_round_trip() -> None:
    data = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=caf\xe9\r\nt=0 0\r\n"
    assert serialize(parse(data)) == data


def test_empty_attribute_value_differs_from_flag() -> None:
    sd = parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\na=foo:\r\na=bar\r\n")
    assert sd.attributes == [Attribute("foo", ""), Attribute("bar")]
    assert sd.attribute("foo") == "" and sd.attribute("bar") is None
    assert sd.has_flag("bar") and not sd.has_flag("foo")


def test_set_direction_replaces_in_place() -> None:
    media = MediaDescription("audio", 1, "RTP/AVP", ["0"])
    media.attributes = [Attribute("rtpmap", "0 PCMU/8000"), Attribute("sendonly"), Attribute("x")]
    media.set_direction(Direction.INACTIVE)
    assert media.attributes[1] == Attribute("inactive")
    media.set_direction(None)
    assert media.direction is None and len(media.attributes) == 2
    media.set_direction(Direction.RECVONLY)
    assert media.attributes[-1] == Attribute("recvonly")


def test_direction_algebra() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.SENDRECV.reversed() is Direction.SENDRECV
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.from_flags(send=False, receive=True) is Direction.RECVONLY


def test_static_payload_table() -> None:
    expected = {0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 18: "G729", 31: "H261"}
    for pt, name in expected.items():
        assert STATIC_PAYLOAD_TYPES[pt].encoding_name == name
    assert STATIC_PAYLOAD_TYPES[32].media == "video"
    assert STATIC_PAYLOAD_TYPES[34].encoding_name == "H263"
    assert static_rtpmap(10) == RtpMap(10, "L16", 44100, 2)
    assert static_rtpmap(9) == RtpMap(9, "G722", 8000)  # 8000 by RFC 3551's own quirk
    assert static_rtpmap(96) is None


def test_fmtp_params() -> None:
    assert parse_fmtp_params("profile-level-id=42e01f; packetization-mode=1") == {
        "profile-level-id": "42e01f",
        "packetization-mode": "1",
    }
    assert parse_fmtp_params("0-15") == {"0-15": ""}


def test_views_on_hand_built_media_raise_sdp_error() -> None:
    media = MediaDescription("audio", 1, "RTP/AVP", ["x"], attributes=[Attribute("ptime", "a")])
    with pytest.raises(SdpError):
        media.payload_types()
    with pytest.raises(SdpError):
        _ = media.ptime_ms


def test_default_session_serializes() -> None:
    sd = SessionDescription(Origin("-", "1", 2, "192.0.2.1"))
    assert serialize_str(sd) == "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"


HEAD = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("text", "line", "defect"),
    [
        ("", None, "empty"),
        ("o=- 1 1 IN IP4 h\r\n", 1, "v="),
        ("v=1\r\n", 1, "version"),
        (HEAD + "v=0\r\n", 5, "first line"),
        ("v=0\r\ns=-\r\n", None, "missing o="),
        ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\n", 3, "missing s="),
        (HEAD + "garbage\r\n", 5, "<type>=<value>"),
        (HEAD + "A=b\r\n", 5, "lower-case"),
        (HEAD + "a=x\rb\r\n", 5, "bare CR"),
        (HEAD + "a=x\x00\r\n", 5, "NUL"),
        ("v=0\r\no=- 1 IN IP4 h\r\n", 2, "6 fields"),
        ("v=0\r\no=- 1 x IN IP4 h\r\n", 2, "session version"),
        ("v=0\r\no=- 1 1 IN IP6 [2001:db8::1]\r\n", 2, "bracketed"),
        ("v=0\r\no=- 1 1 IN IP6 2001:db8:::1:2:3:4:5:6\r\n", 2, "IPv6"),
        ("v=0\r\no=- 1 1 IN IP4 300.1.1.1\r\n", 2, "IPv4"),
        (HEAD + "s=again\r\n", 5, "more than one s="),
        (HEAD + "c=IN IP4\r\n", 5, "3 fields"),
        (HEAD + "c=IN IP4 224.2.1.1/300\r\n", 5, "TTL"),
        (HEAD + "c=IN IP4 224.2.1.1/1/2/3\r\n", 5, "'/'"),
        (HEAD + "c=IN IP6 ff15::1/1/2\r\n", 5, "'/'"),
        (HEAD + "c=IN IP4 /5\r\n", 5, "empty connection"),
        (HEAD + "c=IN IP@ h\r\n", 5, "address type"),
        (HEAD + "b=AS\r\n", 5, "<bwtype>"),
        (HEAD + "b=AS:x\r\n", 5, "bandwidth"),
        (HEAD + "t=0\r\n", 5, "2 fields"),
        (HEAD + "t=+1 0\r\n", 5, "start time"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nr=1 1 1\r\n", 4, "follow a t="),
        (HEAD + "r=1 1 x\r\n", 5, "repeat time"),
        (HEAD + "z=1 1h 2\r\n", 5, "pairs"),
        (HEAD + "z=1 +1h\r\n", 5, "offset"),
        (HEAD + "a=\r\n", 5, "attribute name"),
        (HEAD + "a=a b\r\n", 5, "attribute name"),
        (HEAD + "m=audio\r\n", 5, "at least 3"),
        (HEAD + "m=audio 70000 RTP/AVP 0\r\n", 5, "port"),
        (HEAD + "m=audio 1/x RTP/AVP 0\r\n", 5, "port count"),
        (HEAD + "m=audio 1 RTP//AVP 0\r\n", 5, "protocol"),
        (HEAD + "m=audio 1 RTP/AVP 128\r\n", 5, "payload type"),
        (HEAD + "m=audio 1 RTP/AVP x\r\n", 5, "payload type"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\nt=0 0\r\n", 6, "not allowed"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\ni=a\r\ni=b\r\n", 7, "more than one i="),
        (HEAD + "m=audio 1 RTP/AVP 0\r\nk=a\r\nk=b\r\n", 7, "more than one k="),
        (HEAD + "m=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", 6, "rtpmap"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\na=rtpmap:200 X/1\r\n", 6, "payload type"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\na=fmtp:0\r\n", 6, "fmtp"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\na=ptime:abc\r\n", 6, "packet time"),
        (HEAD + "m=audio 1 RTP/AVP 0\r\na=rtcp:99999\r\n", 6, "rtcp"),
        (HEAD + "a=x\r\n\r\na=y\r\n", 6, "<type>=<value>"),
    ],
)
def test_malformed_input_names_line_and_defect(text: str, line: int | None, defect: str) -> None:
    with pytest.raises(SdpError) as info:
        parse(text)
    assert info.value.line_number == line
    assert defect in str(info.value)
    if line is not None:
        assert str(info.value).startswith(f"line {line} ")


def test_rtp_attributes_outside_rtp_media_are_opaque() -> None:
    sd = parse(HEAD + "a=rtpmap:nonsense\r\nm=application 9 TCP/MSRP *\r\na=fmtp:* x\r\n")
    assert sd.attribute("rtpmap") == "nonsense"


def test_long_lines_are_shortened_in_messages() -> None:
    with pytest.raises(SdpError) as info:
        parse(HEAD + "a=" + "x " * 100 + "\r\n")
    assert "..." in str(info.value)
    assert info.value.line is not None and len(info.value.line) > 100
