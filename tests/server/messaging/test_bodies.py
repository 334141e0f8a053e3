"""Body formats of messaging and presence: CPIM (RFC 3862), message summaries
(RFC 3842), PIDF (RFC 3863) with RPID activities (RFC 4480)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.content.cpim import CpimError, CpimMessage, parse_cpim
from sipline.content.pidf import (
    PidfError,
    PresenceDocument,
    PresenceTuple,
    compose,
    parse_pidf,
    status_document,
)
from sipline.content.summary import Counts, MessageSummary, SummaryError, parse_summary

# RFC 3862 §6.1, the example message (CRLF line ends).
RFC3862_EXAMPLE = (
    b"From: MR SANDERS <im:piglet@100akerwood.com>\r\n"
    b"To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n"
    b"DateTime: 2000-12-13T13:40:00-08:00\r\n"
    b"Subject: the weather will be fine today\r\n"
    b"Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n"
    b"NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
    b"Require: MyFeatures.VitalMessageOption\r\n"
    b"MyFeatures.VitalMessageOption: Confirmation-requested\r\n"
    b"MyFeatures.WackyMessageOption: Use-silly-font\r\n"
    b"\r\n"
    b"Content-type: text/xml; charset=utf-8\r\n"
    b"Content-ID: <1234567890@foo.com>\r\n"
    b"\r\n"
    b"<body>Here is the text of my message.</body>"
)


def test_rfc3862_example_parses() -> None:
    m = parse_cpim(RFC3862_EXAMPLE)
    assert m.from_ == "MR SANDERS <im:piglet@100akerwood.com>"
    assert m.to == "Depressed Donkey <im:eeyore@100akerwood.com>"
    assert m.datetime == "2000-12-13T13:40:00-08:00"
    assert m.get("MyFeatures.VitalMessageOption") == "Confirmation-requested"
    assert m.content_type == "text/xml; charset=utf-8"
    assert m.content == b"<body>Here is the text of my message.</body>"


def test_cpim_with_lf_line_ends_is_read() -> None:
    m = parse_cpim(b"From: <sip:a@x>\nTo: <sip:b@x>\n\nContent-Type: text/plain\n\nhi\n")
    assert m.content == b"hi\n" and m.content_type == "text/plain"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty line"),
        (b"From: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\nx", "From or To"),
        (b"From: <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\nContent-ID: <1>\r\n\r\nx", "Content-Type"),
        (b"From <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\n", "bad CPIM header"),
        (b"From: <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\nContent-Type: text/plain", "empty line"),
        (b"\xff\xfe: x\r\n\r\n", "UTF-8"),
        (b"".join(b"X%d: y\r\n" % i for i in range(100)) + b"\r\n", "too many"),
    ],
)
def test_malformed_cpim_is_refused_with_a_reason(body: bytes, why: str) -> None:
    with pytest.raises(CpimError, match=why):
        parse_cpim(body)


header_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"),
    max_size=30,
).map(str.strip)


@given(
    content=st.binary(max_size=200),
    subject=st.none() | header_value,
    from_user=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
)
def test_cpim_round_trips(content: bytes, subject: str | None, from_user: str) -> None:
    m = CpimMessage.wrap(
        content,
        "text/plain;charset=utf-8",
        from_=f"<sip:{from_user}@example.com>",
        to="<sip:bob@example.com>",
        datetime="2026-12-01T10:00:00Z",
        subject=subject,
    )
    back = parse_cpim(m.serialize())
    assert back.content == content
    assert back.from_ == f"<sip:{from_user}@example.com>"
    assert back.get("Subject") == subject
    assert back.content_type == "text/plain;charset=utf-8"


@given(st.binary(max_size=300))
def test_cpim_parser_raises_only_its_error(data: bytes) -> None:
    with contextlib.suppress(CpimError):
        parse_cpim(data)


def test_cpim_refuses_to_write_a_line_break_in_a_header() -> None:
    with pytest.raises(CpimError, match="line break"):
        CpimMessage.wrap(
            b"", "text/plain", from_="<sip:a@x>\r\nEvil: 1", to="<sip:b@x>"
        ).serialize()


# --- message summary ---------------------------------------------------------------


def test_rfc3842_example_parses() -> None:
    body = (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n"
        b"Voice-Message: 4/8 (1/2)\r\n\r\nTo: <alice@atlanta.example.com>\r\n"
    )
    s = parse_summary(body)
    assert s.waiting and s.account == "sip:alice@vmail.example.com"
    assert s.counts == {"voice-message": Counts(4, 8, 1, 2)}


def test_summary_of_stored_text_messages() -> None:
    body = MessageSummary.of_text("sip:alice@example.com", 3).serialize()
    assert body == (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@example.com\r\nText-Message: 3/0\r\n"
    )
    assert MessageSummary.of_text("sip:a@x", 0).serialize().startswith(b"Messages-Waiting: no")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Voice-Message: 1/0\r\n",
        b"Messages-Waiting: maybe\r\n",
        b"Messages-Waiting: yes\r\nText-Message: x/1\r\n",
        b"\xff",
    ],
)
def test_malformed_summary_is_refused(body: bytes) -> None:
    with pytest.raises(SummaryError):
        parse_summary(body)


counts = st.builds(
    Counts,
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


@given(
    waiting=st.booleans(),
    per_class=st.dictionaries(
        st.sampled_from(["voice-message", "text-message", "fax-message"]), counts
    ),
)
def test_summary_round_trips(waiting: bool, per_class: dict[str, Counts]) -> None:
    s = MessageSummary(waiting, "sip:alice@example.com", per_class)
    assert parse_summary(s.serialize()) == s


@given(st.binary(max_size=200))
def test_summary_parser_raises_only_its_error(data: bytes) -> None:
    with contextlib.suppress(SummaryError):
        parse_summary(data)


# --- PIDF --------------------------------------------------------------------------

# RFC 3863 §3.4 example, with an RPID person (RFC 4480 §3) added.
PIDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status><basic>open</basic></status>
    <contact priority="0.8">tel:+09012345678</contact>
  </tuple>
  <dm:person id="p1">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <dm:note>in the boardroom</dm:note>
  </dm:person>
</presence>
"""


def test_pidf_example_parses() -> None:
    doc = parse_pidf(PIDF)
    assert doc.entity == "pres:someone@example.com"
    assert doc.tuples == (PresenceTuple("sg89ae", "open", "tel:+09012345678"),)
    assert doc.basic == "open" and doc.activities == ("meeting",)
    assert doc.describe() == "meeting (in the boardroom)"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<presence", "well-formed"),
        (b'<x xmlns="urn:ietf:params:xml:ns:pidf" entity="a"/>', "root"),
        (b'<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', "entity"),
        (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><tuple/></presence>', "id"),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><tuple id="t"/></presence>',
            "status",
        ),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="a"><tuple id="t">'
            b"<status><basic>maybe</basic></status></tuple></presence>",
            "open or closed",
        ),
        (
            b'<!DOCTYPE lolz [<!ENTITY lol "lol">]><presence xmlns="urn:ietf:params:xml:ns:pidf"'
            b' entity="&lol;"/>',
            "DOCTYPE",
        ),
        (b" " * (64 * 1024 + 1), "too large"),
        (b'<?xml version="1.0" encoding="U"?><presence/>', "unsupported encoding"),
        (b'<?xml version="1.0" encoding="shift_jis"?><presence/>', "unsupported encoding"),
    ],
)
def test_malformed_pidf_is_refused_with_a_reason(body: bytes, why: str) -> None:
    with pytest.raises(PidfError, match=why):
        parse_pidf(body)


def test_status_words() -> None:
    away = status_document("sip:alice@example.com", "away", note="in a meeting")
    assert parse_pidf(away.serialize()).describe() == "away (in a meeting)"
    assert status_document("sip:a@x", "offline").basic == "closed"
    assert status_document("sip:a@x", "online").status == "online"
    with pytest.raises(ValueError, match="status"):
        status_document("sip:a@x", "asleep")


def test_compose_keeps_every_device_newest_first() -> None:
    phone = status_document("sip:a@x", "online", tuple_id="t1")
    laptop = status_document("sip:a@x", "away", note="lunch", tuple_id="t1")
    merged = compose("sip:a@x", [phone, laptop])
    assert [t.id for t in merged.tuples] == ["t1", "t1-2"]
    assert merged.basic == "open" and merged.describe() == "away (lunch)"
    assert compose("sip:a@x", []).basic == "closed"


text = (
    st.text(
        alphabet=st.characters(
            min_codepoint=0x20, max_codepoint=0xD7FF, blacklist_characters="<>&"
        ),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)
tuples = st.builds(
    PresenceTuple,
    id=st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True),
    basic=st.sampled_from([None, "open", "closed"]),
    contact=st.none() | st.just("sip:alice@192.0.2.1"),
    note=st.none() | text,
)


@given(
    tuples=st.lists(tuples, max_size=4, unique_by=lambda t: t.id),
    notes=st.lists(text, max_size=2),
    activities=st.lists(st.sampled_from(["away", "busy", "meeting"]), max_size=2, unique=True),
)
def test_pidf_round_trips(
    tuples: list[PresenceTuple], notes: list[str], activities: list[str]
) -> None:
    doc = PresenceDocument("sip:alice@example.com", tuple(tuples), tuple(notes), tuple(activities))
    assert parse_pidf(doc.serialize()) == doc


@given(st.binary(max_size=300))
def test_pidf_parser_raises_only_its_error(data: bytes) -> None:
    with contextlib.suppress(PidfError):
        parse_pidf(data)
