"""RFC 3264 mechanics: offers, answers, negotiation results and o= versioning."""

from __future__ import annotations

import copy

import pytest

from sipline.sdp import (
    Capabilities,
    Codec,
    Direction,
    MediaCapability,
    SdpError,
    SessionDescription,
    check_answer,
    check_version,
    create_answer,
    create_offer,
    is_hold,
    negotiate,
    next_version,
    parse,
    process_answer,
    same_content,
    serialize_str,
)

PCMU = Codec("PCMU", 8000)
PCMA = Codec("PCMA", 8000)
OPUS = Codec("opus", 48000, 2, fmtp="useinbandfec=1")


def offer_of(*media: str, session: str = "") -> SessionDescription:
    head = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    return parse(head + session + "".join(media))


def caps(*media: MediaCapability, prefer_own_order: bool = False) -> Capabilities:
    return Capabilities(
        "192.0.2.20", media, username="bob", session_id="7", prefer_own_order=prefer_own_order
    )


def audio(*codecs: Codec, **kwargs: object) -> MediaCapability:
    return MediaCapability("audio", 4000, codecs, **kwargs)  # type: ignore[arg-type]


AUDIO_0_8 = "m=audio 5004 RTP/AVP 0 8\r\n"


def test_answer_session_level() -> None:
    answer = create_answer(offer_of(AUDIO_0_8), caps(audio(PCMA)))
    text = serialize_str(answer)
    assert text.startswith(
        "v=0\r\no=bob 7 0 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
    )
    # Static type matched by number without an rtpmap in the offer; ours names it.
    assert text.endswith("m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


def test_answer_copies_the_offers_timing() -> None:
    offer = offer_of(AUDIO_0_8)
    offer.timings[0].start = 3034423619
    assert create_answer(offer, caps(audio(PCMU))).timings == offer.timings


def test_ipv6_capabilities() -> None:
    answer = create_answer(offer_of(AUDIO_0_8), Capabilities("2001:db8::1", [audio(PCMU)]))
    assert answer.origin.addrtype == "IP6"
    assert answer.connection is not None and answer.connection.addrtype == "IP6"
    assert parse(serialize_str(answer)) == answer


def test_dynamic_payload_types_keep_the_offerers_numbers() -> None:
    offer = offer_of(
        "m=audio 5004 RTP/AVP 111 0\r\na=rtpmap:111 OPUS/48000/2\r\na=fmtp:111 stereo=1\r\n"
    )
    (media,) = create_answer(offer, caps(audio(Codec("Opus", 48000, 2)))).media
    assert media.formats == ["111"]
    assert media.attribute_values("rtpmap") == ["111 OPUS/48000/2"]
    assert media.fmtp(111) == "stereo=1"  # none of our own: the offer's is carried


def test_our_fmtp_wins() -> None:
    offer = offer_of("m=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 x=1\r\n")
    (media,) = create_answer(offer, caps(audio(OPUS))).media
    assert media.fmtp(111) == "useinbandfec=1"


def test_channels_and_clock_rate_must_match() -> None:
    offer = offer_of(
        "m=audio 5004 RTP/AVP 96 97\r\na=rtpmap:96 opus/48000/1\r\na=rtpmap:97 PCMU/16000\r\n"
    )
    (media,) = create_answer(offer, caps(audio(OPUS, PCMU))).media
    assert media.port == 0


def test_codec_order_follows_the_offer_unless_we_prefer_ours() -> None:
    offer = offer_of(AUDIO_0_8)
    assert create_answer(offer, caps(audio(PCMA, PCMU))).media[0].formats == ["0", "8"]
    ours = caps(audio(PCMA, PCMU), prefer_own_order=True)
    assert create_answer(offer, ours).media[0].formats == ["8", "0"]


@pytest.mark.parametrize(
    ("offered", "preference", "expected"),
    [
        ("", Direction.SENDRECV, Direction.SENDRECV),
        ("a=sendrecv\r\n", Direction.SENDONLY, Direction.SENDONLY),
        ("", Direction.RECVONLY, Direction.RECVONLY),
        ("", Direction.INACTIVE, Direction.INACTIVE),
        ("a=sendonly\r\n", Direction.SENDRECV, Direction.RECVONLY),
        ("a=sendonly\r\n", Direction.SENDONLY, Direction.INACTIVE),
        ("a=recvonly\r\n", Direction.SENDRECV, Direction.SENDONLY),
        ("a=recvonly\r\n", Direction.RECVONLY, Direction.INACTIVE),
        ("a=inactive\r\n", Direction.SENDRECV, Direction.INACTIVE),
    ],
)
def test_direction_mapping(offered: str, preference: Direction, expected: Direction) -> None:
    offer = offer_of(AUDIO_0_8 + offered)
    answer = create_answer(offer, caps(audio(PCMU, direction=preference)))
    assert answer.effective_direction(answer.media[0]) is expected
    assert answer.media[0].direction is (None if expected is Direction.SENDRECV else expected)
    assert check_answer(offer, answer) == []


def test_session_level_direction_is_inherited() -> None:
    offer = offer_of(AUDIO_0_8, session="a=sendonly\r\n")
    answer = create_answer(offer, caps(audio(PCMU)))
    assert answer.media[0].direction is Direction.RECVONLY


def test_rejections_keep_one_format() -> None:
    offer = offer_of(
        "m=audio 0 RTP/AVP 0\r\n",  # disabled by the offerer
        "m=video 5006 RTP/AVP 31\r\n",  # no video capability
        "m=audio 5008 RTP/SAVP 0\r\n",  # transport we do not run
        "m=application 9 TCP/MSRP *\r\n",  # not RTP at all
        "m=audio 5010 RTP/AVP 96\r\na=rtpmap:96 AMR/8000\r\n",  # no codec in common
        AUDIO_0_8,
    )
    capability = MediaCapability("application", 9, [Codec("x", 1)], proto="TCP/MSRP")
    answer = create_answer(offer, caps(audio(PCMU), capability))
    assert [(m.port, m.formats) for m in answer.media] == [
        (0, ["0"]),
        (0, ["31"]),
        (0, ["0"]),
        (0, ["*"]),
        (0, ["96"]),
        (4000, ["0"]),
    ]
    assert answer.media[4].attribute("rtpmap") == "96 AMR/8000"
    assert [m.is_rejected for m in answer.media] == [True] * 5 + [False]
    assert check_answer(offer, answer) == []


def test_rejecting_an_empty_format_list_still_lists_one() -> None:
    offer = offer_of("m=audio 0 RTP/AVP\r\n", "m=message 0 TCP/MSRP\r\n")
    answer = create_answer(offer, caps(audio(PCMU)))
    assert [m.formats for m in answer.media] == [["0"], ["*"]]


def test_further_streams_of_a_type_get_new_ports() -> None:
    offer = offer_of(AUDIO_0_8, AUDIO_0_8, "m=audio 5004 RTP/AVP 18\r\n", AUDIO_0_8)
    answer = create_answer(offer, caps(audio(PCMU)))
    assert [m.port for m in answer.media] == [4000, 4002, 0, 4004]
    second = MediaCapability("audio", 6000, [PCMU], address="192.0.2.99")
    answer = create_answer(offer, caps(audio(PCMU), second))
    assert [m.port for m in answer.media] == [4000, 6000, 0, 6002]
    connection = answer.connection_for(answer.media[1])
    assert connection is not None and connection.address == "192.0.2.99"


def test_ptime_is_carried_or_ours() -> None:
    offer = offer_of(AUDIO_0_8 + "a=ptime:30\r\n")
    assert create_answer(offer, caps(audio(PCMU))).media[0].ptime_ms == 30
    assert create_answer(offer, caps(audio(PCMU, ptime_ms=20))).media[0].ptime_ms == 20


TE_OFFER = (
    "m=audio 5004 RTP/AVP 0 101 102\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=rtpmap:102 telephone-event/48000\r\na=fmtp:101 0-15\r\n"
)


def test_telephone_event_follows_the_voice_clock_rate() -> None:
    (media,) = create_answer(offer_of(TE_OFFER), caps(audio(PCMU, telephone_event=True))).media
    assert media.formats == ["0", "101"]
    assert media.fmtp(101) == "0-15"
    (media,) = create_answer(offer_of(TE_OFFER), caps(audio(PCMU))).media
    assert media.formats == ["0"]


def test_events_alone_do_not_accept_a_voice_stream() -> None:
    (media,) = create_answer(offer_of(TE_OFFER), caps(audio(PCMA, telephone_event=True))).media
    assert media.port == 0


def test_explicit_telephone_event_codec_counts_as_support() -> None:
    te = Codec("telephone-event", 8000)
    (media,) = create_answer(offer_of(TE_OFFER), caps(audio(PCMU, te))).media
    assert media.formats == ["0", "101"]


def test_offer_numbering_and_attributes() -> None:
    capability = audio(
        PCMU, OPUS, Codec("G722", 8000), Codec("iLBC", 8000, payload_type=102),
        telephone_event=True, ptime_ms=20, direction=Direction.SENDONLY,
    )  # fmt: skip
    video = MediaCapability("video", 5000, [Codec("H264", 90000)], address="192.0.2.30")
    offer = create_offer(caps(capability, video))
    audio_m, video_m = offer.media
    assert audio_m.formats == ["0", "96", "9", "102", "97", "98"]
    assert [c.value() for c in audio_m.codecs()] == [
        "0 PCMU/8000",
        "96 opus/48000/2",
        "9 G722/8000",
        "102 iLBC/8000",
        "97 telephone-event/8000",
        "98 telephone-event/48000",
    ]
    assert audio_m.fmtp(96) == "useinbandfec=1"
    assert audio_m.fmtp(97) == "0-16"
    assert audio_m.ptime_ms == 20
    assert audio_m.direction is Direction.SENDONLY
    assert video_m.formats == ["96"]
    assert video_m.connection is not None and video_m.connection.address == "192.0.2.30"
    assert parse(serialize_str(offer)) == offer


def test_offer_runs_out_of_dynamic_payload_types() -> None:
    many = [Codec(f"c{i}", 8000) for i in range(33)]
    with pytest.raises(SdpError, match="dynamic payload types"):
        create_offer(caps(audio(*many)))


def test_full_exchange_from_both_ends() -> None:
    alice = Capabilities("192.0.2.10", [audio(OPUS, PCMU, telephone_event=True)])
    bob = Capabilities(
        "192.0.2.20",
        [MediaCapability("audio", 7000, [PCMU, Codec("OPUS", 48000, 2)], telephone_event=True)],
    )
    offer = create_offer(alice)
    answer = create_answer(offer, bob)
    assert check_answer(offer, answer) == []

    (ours,) = process_answer(offer, answer)
    assert ours.accepted and ours.direction is Direction.SENDRECV
    assert (ours.remote_address, ours.remote_port) == ("192.0.2.20", 7000)
    assert (ours.remote_rtcp_address, ours.remote_rtcp_port) == ("192.0.2.20", 7001)
    assert ours.codec is not None and ours.codec.encoding_name == "opus"
    assert ours.telephone_event is not None and ours.telephone_event.clock_rate == 48000
    assert not ours.remote_hold

    (theirs,) = negotiate(answer, offer)
    assert (theirs.remote_address, theirs.remote_port) == ("192.0.2.10", 4000)
    assert theirs.codec is not None and theirs.codec.payload_type == 96


def test_negotiate_reads_rtcp_and_hold() -> None:
    offer = offer_of(AUDIO_0_8)
    answer = parse(
        "v=0\r\no=bob 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "m=audio 7000 RTP/AVP 0\r\na=rtcp:7100 IN IP4 192.0.2.50\r\na=ptime:40\r\n"
    )
    (stream,) = process_answer(offer, answer)
    assert stream.remote_hold
    assert stream.direction is Direction.RECVONLY  # RFC 3264 §8.4: send nothing to 0.0.0.0
    assert (stream.remote_rtcp_address, stream.remote_rtcp_port) == ("192.0.2.50", 7100)
    assert stream.ptime_ms == 40


def test_rejected_streams_negotiate_to_inactive() -> None:
    offer = offer_of(AUDIO_0_8)
    answer = create_answer(offer, caps())
    (stream,) = process_answer(offer, answer)
    assert not stream.accepted
    assert stream.direction is Direction.INACTIVE
    assert stream.codecs == () and stream.remote_rtcp_port == 0


def test_process_answer_rejects_a_broken_correspondence() -> None:
    offer = offer_of(AUDIO_0_8, AUDIO_0_8)
    with pytest.raises(SdpError, match="2 m-lines, the answer 1"):
        process_answer(offer, offer_of(AUDIO_0_8))
    with pytest.raises(SdpError, match="media 'audio', the answer 'video'"):
        process_answer(offer, offer_of(AUDIO_0_8, "m=video 1 RTP/AVP 31\r\n"))


def test_check_answer_reports_each_rule() -> None:
    offer = offer_of(AUDIO_0_8 + "a=sendonly\r\n", "m=audio 0 RTP/AVP 0\r\n")
    bad = parse(
        "v=0\r\no=b 1 1 IN IP4 h\r\ns=-\r\nt=1 2\r\n"
        "m=audio 1 RTP/SAVP 0 18 99\r\na=sendonly\r\nm=audio 9 RTP/AVP\r\n"
    )
    assert check_answer(offer, bad) == [
        "the answer's t= lines differ from the offer's (RFC 3264 §6)",
        "m-line 0: transport 'RTP/SAVP' answers 'RTP/AVP'",
        "m-line 0: codec '18 G729/8000' was not offered",
        "m-line 0: format '99' was not offered",
        "m-line 0: sendonly does not answer sendonly (RFC 3264 §6.1)",
        "m-line 1: no format listed (SDP needs at least one)",
        "m-line 1: a stream offered with port 0 must be answered with 0",
    ]
    assert check_answer(offer, offer_of(AUDIO_0_8)) == ["the offer has 2 m-lines, the answer 1"]


def test_check_answer_non_rtp_formats() -> None:
    offer = offer_of("m=message 9 TCP/MSRP *\r\n")
    answer = offer_of("m=message 9 TCP/MSRP * x\r\n")
    assert check_answer(offer, answer) == ["m-line 0: format 'x' was not offered"]


def test_is_hold() -> None:
    sd = offer_of(AUDIO_0_8, AUDIO_0_8 + "a=inactive\r\n", AUDIO_0_8 + "c=IN IP4 0.0.0.0\r\n")
    assert [is_hold(sd, m) for m in sd.media] == [False, True, True]
    assert is_hold(offer_of(AUDIO_0_8, session="a=sendonly\r\n"), sd.media[0])


def test_next_version_only_moves_on_change() -> None:
    first = create_offer(caps(audio(PCMU)))
    first.origin.session_version = 5
    assert next_version(None, first) == first
    again = create_offer(Capabilities("192.0.2.20", [audio(PCMU)], username="other"))
    stamped = next_version(first, again)
    assert stamped.origin == first.origin  # the o= line stays that of the dialog's first SDP
    assert same_content(stamped, first)
    changed = create_offer(caps(audio(PCMU, direction=Direction.SENDONLY)))
    stamped = next_version(first, changed)
    assert stamped.origin.session_version == 6
    assert changed.origin.session_version == 0  # the input is left alone
    assert check_version(first, stamped) == []


def test_check_version_problems() -> None:
    first = offer_of(AUDIO_0_8)
    moved = copy.deepcopy(first)
    moved.origin.address = "elsewhere"
    moved.media[0].port = 1
    assert check_version(first, moved) == [
        "o= address changed from '192.0.2.10' to 'elsewhere'",
        "o= version is 1, expected 2 after a change",
    ]
