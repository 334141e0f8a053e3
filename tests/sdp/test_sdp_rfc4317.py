"""RFC 4317 exchanges: the RFC's answers obey RFC 3264, and ours are equivalent to them."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest

from sipline.sdp import (
    Capabilities,
    Codec,
    Direction,
    MediaCapability,
    SessionDescription,
    check_answer,
    check_version,
    create_answer,
    next_version,
    parse,
    process_answer,
    serialize,
)

CORPUS = Path(__file__).parent.parent / "data" / "rfc4317-sdp"
with (CORPUS / "MANIFEST.tsv").open(newline="") as manifest:
    ROWS = list(csv.DictReader(manifest, delimiter="\t"))

# RFC 4317 3.2 second answer repeats Alice's first offer: it answers a sendonly stream
# without recvonly/inactive and lists PCMU, which that offer dropped. See tests/data/README.md.
LENIENT = {("3.2", "2")}
LENIENT_PROBLEMS = [
    "m-line 0: codec '0 PCMU/8000' was not offered",
    "m-line 0: sendrecv does not answer sendonly (RFC 3264 §6.1)",
]

PCMU = Codec("PCMU", 8000)
PCMA = Codec("PCMA", 8000)
ILBC = Codec("iLBC", 8000)
H261 = Codec("H261", 90000)
MPV = Codec("MPV", 90000)


def audio(
    *codecs: Codec, te: bool = False, direction: Direction = Direction.SENDRECV
) -> MediaCapability:
    return MediaCapability("audio", 49170, codecs, telephone_event=te, direction=direction)


def video(*codecs: Codec, address: str | None = None) -> MediaCapability:
    return MediaCapability("video", 51372, codecs, address=address)


def caps(*media: MediaCapability, address: str = "host.example.com") -> Capabilities:
    return Capabilities(address, media, username="x", session_id="1", session_version=1)


# The answerer's capabilities that lead to each expected_result in the manifest.
ANSWERER = {
    ("2.1", "1"): caps(audio(PCMU), video(MPV)),
    ("2.2", "1"): caps(audio(PCMU, PCMA)),
    ("2.2", "2"): caps(audio(PCMU, PCMA)),
    ("2.3", "1"): caps(audio(ILBC), video(H261)),
    ("2.4", "1"): caps(audio(ILBC, te=True)),
    ("2.5", "1"): caps(audio(ILBC), video(H261)),
    ("2.5", "2"): caps(audio(ILBC), video(H261)),
    ("2.6", "1"): caps(audio(ILBC, te=True)),
    ("2.7", "1"): caps(audio(ILBC), video(H261)),
    ("2.7", "2"): caps(audio(ILBC), video(H261, MPV)),
    ("2.8", "1"): caps(audio(PCMU), video(MPV, address="otherhost.biloxi.example.com")),
    ("3.1", "1"): caps(audio(ILBC, direction=Direction.SENDONLY)),
    ("3.1", "2"): caps(audio(PCMU, ILBC)),
    ("3.2", "1"): caps(audio(ILBC, te=True)),
    ("3.2", "2"): caps(audio(PCMU, ILBC, te=True)),
    ("4.1", "1"): caps(audio(ILBC)),
    ("4.1", "2"): caps(audio(PCMU, ILBC, te=True)),
    ("4.2", "1"): caps(audio(PCMU)),
    ("4.2", "2"): caps(audio(PCMU), video(H261)),
    ("4.3", "1"): caps(audio(ILBC), video(H261)),
    ("4.3", "2"): caps(audio(ILBC), video(H261)),
    ("5.1", "1"): caps(audio(ILBC)),
    ("5.1", "2"): caps(audio(ILBC)),
    ("5.2", "1"): caps(audio(ILBC)),
    ("5.2", "2"): caps(audio(ILBC)),
    ("5.3", "1"): caps(audio(ILBC), address="0.0.0.0"),
    ("5.3", "2"): caps(audio(ILBC)),
}

Stream = tuple[str, bool, Direction, frozenset[tuple[str, int, int]]]


def semantics(sd: SessionDescription) -> list[Stream]:
    """What an answer means: per stream, accepted or not, direction and codec set."""
    return [
        (
            m.media,
            m.port != 0,
            sd.effective_direction(m),
            frozenset(c.key for c in m.codecs()) if m.port else frozenset(),
        )
        for m in sd.media
    ]


def load(name: str) -> SessionDescription:
    return parse((CORPUS / name).read_bytes())


def row_id(row: dict[str, str]) -> str:
    return f"{row['section']}-{row['exchange']}"


def test_manifest_covers_every_exchange() -> None:
    assert len(ROWS) == 27
    assert {(r["section"], r["exchange"]) for r in ROWS} == set(ANSWERER)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_rfc_answer_obeys_rfc3264(row: dict[str, str]) -> None:
    offer, answer = load(row["offer_file"]), load(row["answer_file"])
    problems = check_answer(offer, answer)
    if (row["section"], row["exchange"]) in LENIENT:
        assert problems == LENIENT_PROBLEMS
    else:
        assert problems == []


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_generated_answer_is_equivalent(row: dict[str, str]) -> None:
    offer, expected = load(row["offer_file"]), load(row["answer_file"])
    answer = create_answer(offer, ANSWERER[row["section"], row["exchange"]])
    assert check_answer(offer, answer) == []
    assert parse(serialize(answer)) == answer
    if (row["section"], row["exchange"]) in LENIENT:
        ilbc, te = ("ilbc", 8000, 1), ("telephone-event", 8000, 1)
        assert semantics(answer) == [
            ("audio", True, Direction.RECVONLY, frozenset([ilbc])),
            ("audio", True, Direction.SENDONLY, frozenset([te])),
        ]
    else:
        assert semantics(answer) == semantics(expected)


def test_generated_answer_details() -> None:
    # 2.3: iLBC answered under the offerer's number 97 (the RFC's Bob chose 99, also legal).
    answer = create_answer(load("rfc4317-2.3-offer.sdp"), ANSWERER["2.3", "1"])
    assert answer.media[0].formats == ["97"]
    # 2.4: the second audio stream gets the next RTP port pair.
    answer = create_answer(load("rfc4317-2.4-offer.sdp"), ANSWERER["2.4", "1"])
    assert [m.port for m in answer.media] == [49170, 49172]
    # 2.2: the declined video keeps one format and its rtpmap.
    answer = create_answer(load("rfc4317-2.2-offer.sdp"), ANSWERER["2.2", "1"])
    video = answer.media[1]
    assert (video.port, video.formats, video.attribute("rtpmap")) == (0, ["31"], "31 H261/90000")
    # 2.8: video goes to another host, through a media-level c= line.
    answer = create_answer(load("rfc4317-2.8-offer.sdp"), ANSWERER["2.8", "1"])
    connection = answer.connection_for(answer.media[1])
    assert connection is not None and connection.address == "otherhost.biloxi.example.com"
    assert answer.media[0].connections == []


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_process_rfc_answer(row: dict[str, str]) -> None:
    offer, answer = load(row["offer_file"]), load(row["answer_file"])
    streams = process_answer(offer, answer)
    for stream, media in zip(streams, answer.media, strict=True):
        assert stream.accepted == (media.port != 0)
        if stream.accepted and (row["section"], row["exchange"]) not in LENIENT:
            assert stream.codec is not None or stream.telephone_event is not None
            assert stream.remote_port == media.port
            assert stream.remote_rtcp_port == media.port + 1


def test_process_answer_reads_hold_and_direction() -> None:
    # 3.1: Bob answers sendonly from a placeholder address: Alice only receives.
    (stream,) = process_answer(load("rfc4317-3.1-offer.sdp"), load("rfc4317-3.1-answer.sdp"))
    assert stream.direction is Direction.RECVONLY
    assert stream.remote_address == "placeholder.biloxi.example.com"
    assert stream.codec is not None and stream.codec.encoding_name == "iLBC"
    assert stream.remote_hold
    # 5.3: Bob answers c=0.0.0.0: Alice must send nothing.
    (stream,) = process_answer(load("rfc4317-5.3-offer.sdp"), load("rfc4317-5.3-answer.sdp"))
    assert stream.direction is Direction.RECVONLY and stream.remote_hold
    # 2.4: the event-only stream offered sendonly and answered recvonly.
    _, events = process_answer(load("rfc4317-2.4-offer.sdp"), load("rfc4317-2.4-answer.sdp"))
    assert events.direction is Direction.SENDONLY and events.codec is None
    assert events.telephone_event is not None and events.telephone_event.payload_type == 98
    # 2.3: Alice sends iLBC with Bob's number, 99.
    audio, _ = process_answer(load("rfc4317-2.3-offer.sdp"), load("rfc4317-2.3-answer.sdp"))
    assert audio.codec is not None and audio.codec.payload_type == 99


def _sdp_sequence() -> list[tuple[str, str, str, str]]:
    """(section, party, file, role) for every SDP in exchange order."""
    items = []
    for row in ROWS:
        items.append((row["section"], row["offerer"], row["offer_file"], "offer"))
        items.append((row["section"], row["answerer"], row["answer_file"], "answer"))
    return items


def _successions() -> list[tuple[str, str, str]]:
    """(section, previous file, next file) for each party that sends twice in a section."""
    last: dict[tuple[str, str], str] = {}
    pairs = []
    for section, party, name, _ in _sdp_sequence():
        if (section, party) in last:
            pairs.append((section, last[section, party], name))
        last[section, party] = name
    return pairs


SUCCESSIONS = _successions()
BROKEN_VERSION = {"rfc4317-3.2-second-answer.sdp"}  # unchanged content, version bumped


def test_every_second_exchange_has_successions() -> None:
    assert len(SUCCESSIONS) == 2 * sum(r["exchange"] == "2" for r in ROWS)


@pytest.mark.parametrize(
    ("section", "before", "after"), SUCCESSIONS, ids=[a for _, _, a in SUCCESSIONS]
)
def test_rfc_versions_follow_rfc3264_section8(section: str, before: str, after: str) -> None:
    previous, current = load(before), load(after)
    problems = check_version(previous, current)
    if after in BROKEN_VERSION:
        assert problems == [
            "o= version changed (2890844526 -> 2890844527) although the description did not"
        ]
    else:
        assert problems == []
        # Stamping the same content afresh reproduces the RFC's o= line.
        unstamped = copy.deepcopy(current)
        unstamped.origin.session_version = 0
        assert next_version(previous, unstamped).origin == current.origin
