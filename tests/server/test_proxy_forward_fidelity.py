"""A proxied request is the received one with only the lines §16.6 changes: our Via
above the others, Record-Route for a dialog-creating request, Max-Forwards one less. Every
other octet (folding, compact names, odd spacing, unknown headers, the body) goes out
as it came in; checked on the RFC 4475 torture requests."""

from __future__ import annotations

import csv
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipline.core.message import Request, parse_message
from sipline.core.validate import validate
from sipline.runtime.endpoint import Endpoint
from sipline.server.proxy.forward import DIALOG_CREATING, branch_request
from sipline.server.proxy.local import LocalNames
from sipline.server.proxy.targets import Leg
from sipline.server.security.route_sign import RouteSigner
from sipline.transport import Target

HOST = "127.0.0.1"
DATA = Path(__file__).parents[1] / "data" / "rfc4475"

with (DATA / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
    VALID = [r["file"] for r in csv.DictReader(f, delimiter="\t") if r["expected"] == "valid"]


def requests() -> list[str]:
    out = []
    for name in VALID:
        msg = parse_message((DATA / name).read_bytes())
        if isinstance(msg, Request):
            out.append(name)
    return out


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()
    await ep.bind("UDP", HOST, 0)
    yield ep
    await ep.close()


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Header lines (folded ones kept whole, as raw bytes) and the rest."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines: list[bytes] = []
    for ln in head.split(b"\r\n"):
        if ln[:1] in (b" ", b"\t") and lines:
            lines[-1] += b"\r\n" + ln
        else:
            lines.append(ln)
    return lines, rest


def _is(line: bytes, *names: bytes) -> bool:
    return line.partition(b":")[0].strip(b" \t").lower() in names


@pytest.mark.parametrize("name", requests())
async def test_a_forwarded_request_keeps_every_octet_it_does_not_change(
    endpoint: Endpoint, name: str
) -> None:
    data = (DATA / name).read_bytes()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    validate(msg)
    local = LocalNames(endpoint, lambda host: False, RouteSigner(os.urandom(32)))
    leg = Leg(msg.uri_text, Target("UDP", "192.0.2.1", 5060))
    out = branch_request(
        msg,
        leg,
        endpoint=endpoint,
        local=local,
        record_route=True,
        inbound_transport="UDP",
        loop_hash="0123456789abcdef",
    ).to_bytes()
    sent, sent_rest = _split(out)
    got, got_rest = _split(data if name != "dblreq.dat" else msg.to_bytes())
    assert sent[0] == got[0]  # the Request-Line, as received
    assert sent_rest == got_rest  # the body (and nothing past Content-Length)
    ours = [
        ln
        for ln in sent[1:]
        if ln.startswith(b"Via: SIP/2.0/UDP 127.0.0.1:") and b"0123456789abcdef." in ln
    ]
    assert len(ours) == 1
    # §16.6 step 8: above the Vias received (which may follow other fields).
    first_via = next(ln for ln in got[1:] if _is(ln, b"via", b"v"))
    assert sent[sent.index(ours[0]) + 1] == first_via
    rr = [ln for ln in sent[1:] if ln.startswith(b"Record-Route: <sip:127.0.0.1:")]
    assert len(rr) == (1 if msg.method in DIALOG_CREATING and msg.to.tag is None else 0)
    mf = msg.max_forwards
    assert [ln for ln in sent if _is(ln, b"max-forwards")] == [
        b"Max-Forwards: %d" % ((mf if mf is not None else 70) - 1)
    ]
    # Everything else: the received lines, in order, octet for octet.
    changed = {*ours, *rr}
    kept = [ln for ln in sent[1:] if ln not in changed and not _is(ln, b"max-forwards")]
    assert kept == [ln for ln in got[1:] if not _is(ln, b"max-forwards")]
