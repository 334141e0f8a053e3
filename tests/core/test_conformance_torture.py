"""RFC 4475 and RFC 5118 torture messages: every verdict, per the manifests in tests/data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response, parse_message
from sipline.core.validate import expected_response, validate

DATA = Path(__file__).parents[1] / "data"


def _manifest(folder: str) -> list[dict[str, str]]:
    with (DATA / folder / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


RFC4475 = _manifest("rfc4475")
RFC5118 = _manifest("rfc5118")


def _read(folder: str, name: str) -> bytes:
    return (DATA / folder / name).read_bytes()


def _ids(row: dict[str, str]) -> str:
    return row["file"]


# What a server answers to each invalid request (RFC 4475 §3.1.2, RFC 5118 §4.2).
INVALID_STATUS = {
    "badvers.dat": 505,
}
# Semantic verdicts for the well-formed but odd requests (RFC 4475 §3.3).
SEMANTIC_STATUS = {
    "unkscm.dat": 416,
    "novelsc.dat": 416,
    "bext01.dat": 420,
    "invut.dat": 415,
    "zeromf.dat": 483,
    "sdp01.dat": 406,
    "regaut01.dat": 401,
    "unksm2.dat": 400,
}
# §3.3 cases the RFC itself says are best rejected with 400 at validation.
REJECTED_SEMANTIC = {"insuf.dat", "multi01.dat", "mcl01.dat"}


@pytest.mark.parametrize("row", [r for r in RFC4475 if r["expected"] == "valid"], ids=_ids)
def test_rfc4475_valid_messages_parse_validate_and_round_trip(row: dict[str, str]) -> None:
    data = _read("rfc4475", row["file"])
    msg = parse_message(data)
    validate(msg)
    out = msg.to_bytes()
    if row["file"] == "dblreq.dat":
        # §18.3: octets past Content-Length are dropped, never forwarded.
        assert out == data[: len(out)]
        assert b"INVITE" not in out
    else:
        assert out == data
    again = parse_message(out)
    assert list(again.headers.items()) == list(msg.headers.items())
    assert again.body == msg.body


@pytest.mark.parametrize("row", [r for r in RFC4475 if r["expected"] == "invalid"], ids=_ids)
def test_rfc4475_invalid_messages_are_rejected_with_a_reason(row: dict[str, str]) -> None:
    data = _read("rfc4475", row["file"])
    with pytest.raises(RemoteProtocolError) as info:
        validate(parse_message(data))
    assert info.value.status == INVALID_STATUS.get(row["file"], 400)
    assert info.value.reason and info.value.reason != "Bad Request"


def test_baddn_display_name_rule_itself() -> None:
    # The archive's baddn.dat lacks the final empty line; add it to reach the display name.
    data = _read("rfc4475", "baddn.dat") + b"\r\n"
    with pytest.raises(RemoteProtocolError, match="Display name"):
        validate(parse_message(data))


@pytest.mark.parametrize(
    "row", [r for r in RFC4475 if r["expected"] == "valid-but-odd/semantic"], ids=_ids
)
def test_rfc4475_semantic_cases(row: dict[str, str]) -> None:
    name = row["file"]
    data = _read("rfc4475", name)
    if name in REJECTED_SEMANTIC:
        with pytest.raises(RemoteProtocolError) as info:
            validate(parse_message(data))
        assert info.value.status == 400
        return
    msg = parse_message(data)
    validate(msg)
    if isinstance(msg, Response):
        return  # bcast.dat: a response; dropping it is the proxy's business
    verdict = expected_response(msg)
    if name in SEMANTIC_STATUS:
        assert verdict is not None
        assert verdict.status == SEMANTIC_STATUS[name]
    else:
        assert verdict is None, name


def test_rfc4475_semantic_details() -> None:
    cp1 = parse_message(_read("rfc4475", "cparam01.dat"))
    assert isinstance(cp1, Request)
    (c,) = cp1.contacts
    assert "unknownparam" in c.params  # a contact-param, not a URI parameter
    assert "unknownparam" not in c.uri.params  # type: ignore[union-attr]
    cp2 = parse_message(_read("rfc4475", "cparam02.dat"))
    (c,) = cp2.contacts
    assert "unknownparam" in c.uri.params  # type: ignore[union-attr]
    reg = parse_message(_read("rfc4475", "regescrt.dat"))
    (c,) = reg.contacts
    assert c.uri.headers == [("Route", "%3Csip:sip.example.com%3E")]  # type: ignore[union-attr]
    esc = parse_message(_read("rfc4475", "escnull.dat"))
    assert [c.uri.aor for c in esc.contacts] == [
        "\x00@host5.example.com",
        "\x00\x00@host5.example.com",
    ]  # type: ignore[union-attr]
    inv = parse_message(_read("rfc4475", "inv2543.dat"))
    assert inv.top_via.branch is None
    assert inv.from_.tag is None


@pytest.mark.parametrize("row", [r for r in RFC4475 if r["expected"] == "unreferenced"], ids=_ids)
def test_unreferenced_file_is_rejected_without_crash(row: dict[str, str]) -> None:
    with pytest.raises(RemoteProtocolError):
        validate(parse_message(_read("rfc4475", row["file"])))


@pytest.mark.parametrize("row", RFC5118, ids=_ids)
def test_rfc5118_wire_messages(row: dict[str, str]) -> None:
    data = _read("rfc5118/wire", row["file"])
    if row["expected"] == "invalid":
        with pytest.raises(RemoteProtocolError) as info:
            validate(parse_message(data))
        assert info.value.status == 400
        return
    msg = parse_message(data)
    validate(msg)
    assert msg.to_bytes() == data


def test_rfc5118_details() -> None:
    amb = parse_message(_read("rfc5118/wire", "port-ambiguous.dat"))
    assert isinstance(amb, Request)
    assert amb.uri.host == "2001:db8::10:5070"  # type: ignore[union-attr]
    assert amb.uri.port is None  # type: ignore[union-attr]
    unamb = parse_message(_read("rfc5118/wire", "port-unambiguous.dat"))
    assert (unamb.uri.host, unamb.uri.port) == ("2001:db8::10", 5070)  # type: ignore[union-attr]
    delim = parse_message(_read("rfc5118/wire", "via-received-param-with-delim.dat"))
    assert delim.top_via.received == "2001:db8::9:255"
    multi = parse_message(_read("rfc5118/wire", "mult-ip-in-header.dat"))
    assert [v.host for v in multi.vias] == ["2001:db8::9:1", "192.0.2.1", "2001:db8::9:255"]


@pytest.mark.parametrize(
    "name", ["ipv6-good.dat", "port-unambiguous.dat", "via-received-param-no-delim.dat"]
)
def test_bare_lf_archive_files_are_tolerated(name: str) -> None:
    msg = parse_message(_read("rfc5118", name))
    validate(msg)
