"""The media bridge's decisions, sans-I/O: which SDP is WebRTC, which calls are bridged,
what the direction of a stream is and how the WebRTC side's SDP is edited. Golden
offers: a Chromium offer as JsSIP sends it (ICE candidates gathered, an mDNS host
candidate), baresip's, and sipline's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipline.phone.media import CallMedia, MediaOptions
from sipline.sdp import Direction
from sipline.server.bridge.plan import (
    Role,
    SdpKind,
    audio_direction,
    origin_version,
    plan,
    sdp_kind,
    webrtc_contact,
    with_direction,
    with_version,
)
from sipline.testing.fakes import SeededEntropy

SDP = Path(__file__).parent / "sdp"
CHROMIUM = (SDP / "chromium_jssip_offer.sdp").read_bytes()
BARESIP = (SDP / "baresip_offer.sdp").read_bytes()
BARESIP_HOLD = (SDP / "baresip_hold_offer.sdp").read_bytes()


def sipline_offer(srtp: str = "off") -> bytes:
    media = CallMedia(
        MediaOptions(codecs=("PCMU", "opus"), srtp=srtp),
        entropy=SeededEntropy(1),
        bind_host="127.0.0.1",
        advertise_host="127.0.0.1",
    )
    return media.offer()


def test_chromium_offers_webrtc() -> None:
    assert sdp_kind(CHROMIUM) is SdpKind.WEBRTC


@pytest.mark.parametrize("body", [BARESIP, BARESIP_HOLD], ids=["baresip", "baresip-hold"])
def test_phones_offer_plain_rtp(body: bytes) -> None:
    assert sdp_kind(body) is SdpKind.PLAIN


def test_sipline_offers_plain_rtp_with_or_without_sdes() -> None:
    assert sdp_kind(sipline_offer()) is SdpKind.PLAIN
    assert b"RTP/SAVP" in sipline_offer("mandatory")
    assert sdp_kind(sipline_offer("mandatory")) is SdpKind.PLAIN


def test_dtls_and_ice_make_webrtc_whatever_the_profile_says() -> None:
    # Some gateways write RTP/SAVPF, others UDP/TLS/RTP/SAVP; fingerprint + ufrag decide.
    odd = CHROMIUM.replace(b"UDP/TLS/RTP/SAVPF", b"RTP/AVP")
    assert sdp_kind(odd) is SdpKind.WEBRTC
    assert sdp_kind(CHROMIUM.replace(b"UDP/TLS/RTP/SAVPF", b"RTP/SAVPF")) is SdpKind.WEBRTC


@pytest.mark.parametrize("body", [b"", None, b"v=0\r\nm=video 9 RTP/AVP 96\r\n"])
def test_no_audio_no_kind(body: bytes | None) -> None:
    assert sdp_kind(body) is None


@pytest.mark.parametrize(
    ("offer", "webrtc_target", "role"),
    [
        (CHROMIUM, False, Role.WEBRTC_OFFERS),  # browser -> phone
        (BARESIP, True, Role.PLAIN_OFFERS),  # phone -> browser
        (CHROMIUM, True, None),  # browser -> browser: end to end
        (BARESIP, False, None),  # phone -> phone: untouched
        (b"", True, None),  # no offer in the INVITE (late offer): not bridged
        (b"", False, None),
    ],
)
def test_only_calls_between_kinds_are_bridged(
    offer: bytes, webrtc_target: bool, role: Role | None
) -> None:
    assert plan(offer, webrtc_target=webrtc_target) is role


@pytest.mark.parametrize(
    ("contact", "params", "webrtc"),
    [
        ("sip:h7kq3@df7jal23ls0d.invalid;transport=ws", "+sip.ice;reg-id=1", True),
        ("sip:h7kq3@df7jal23ls0d.invalid;transport=WSS", "", True),
        ("sip:alice@127.0.0.1:5062", "+sip.ice", True),
        ("sip:alice@127.0.0.1:5062", '+sip.instance="<urn:uuid:1>";reg-id=1', False),
        ("sip:alice@127.0.0.1:5062;transport=tcp", "", False),
        ("sip:ws@127.0.0.1", "", False),
    ],
)
def test_webrtc_contacts(contact: str, params: str, webrtc: bool) -> None:
    assert webrtc_contact(contact, params) is webrtc


def test_directions() -> None:
    assert audio_direction(CHROMIUM) is Direction.SENDRECV
    assert audio_direction(BARESIP_HOLD) is Direction.SENDONLY
    old_hold = BARESIP.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0")
    assert audio_direction(old_hold) is Direction.INACTIVE  # RFC 3264 §8.4
    session_level = b"v=0\r\na=recvonly\r\nm=audio 4000 RTP/AVP 0\r\n"
    assert audio_direction(session_level) is Direction.RECVONLY
    assert audio_direction(b"v=0\r\nm=audio 0 RTP/AVP 0\r\n") is Direction.INACTIVE


def test_with_direction_replaces_the_audio_streams_attribute_only() -> None:
    text = CHROMIUM.decode()
    held = with_direction(text, Direction.SENDONLY)
    assert audio_direction(held) is Direction.SENDONLY
    assert held.count("a=sendonly") == 1 and "a=sendrecv" not in held
    # Everything else stays, byte for byte and in order.
    assert [ln for ln in held.splitlines() if ln != "a=sendonly"] == [
        ln for ln in text.splitlines() if ln != "a=sendrecv"
    ]
    added = with_direction(
        "v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", Direction.INACTIVE
    )
    assert added.endswith("a=inactive\r\n")


def test_with_version_sets_the_origin_version() -> None:
    text = CHROMIUM.decode()
    assert origin_version(text) == 2
    bumped = with_version(text, 3)
    assert origin_version(bumped) == 3
    assert bumped.splitlines()[1] == "o=- 4611731400430051336 3 IN IP4 127.0.0.1"
