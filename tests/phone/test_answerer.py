"""Who answered a call, from the 2xx: P-Asserted-Identity, History-Info, Diversion, To."""

from __future__ import annotations

import pytest

from sipline.core.message import Response, parse_message
from sipline.phone.answerer import Answerer, who_answered

BASE = (
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa\r\n"
    "From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>;tag=b\r\n"
    "Call-ID: c\r\nCSeq: 2 INVITE\r\nContact: <sip:carol@127.0.0.1:5072>\r\n"
)
HISTORY = (
    "History-Info: <sip:bob@example.com?Reason=SIP%3Bcause%3D408>;index=1,"
    " <sip:carol@example.com;cause=408>;index=1.1;mp=1,"
    " <sip:carol@127.0.0.1:5072>;index=1.1.1;rc=1.1\r\n"
)


def _response(extra: str) -> Response:
    msg = parse_message((BASE + extra + "Content-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Response)
    return msg


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", Answerer("sip:bob@example.com", "sip:carol@127.0.0.1:5072")),
        (
            HISTORY,
            Answerer("sip:carol@example.com", "sip:carol@127.0.0.1:5072",
                     "sip:bob@example.com", "no answer"),
        ),
        (
            "Diversion: <sip:dave@example.com>;reason=user-busy;counter=1\r\n"
            "Diversion: <sip:bob@example.com>;reason=unconditional;counter=1\r\n",
            Answerer("sip:carol@127.0.0.1:5072", "sip:carol@127.0.0.1:5072",
                     "sip:bob@example.com", "busy"),
        ),
        (
            "P-Asserted-Identity: \"Carol\" <sip:carol@example.com>\r\n" + HISTORY,
            Answerer("sip:carol@example.com", "sip:carol@127.0.0.1:5072",
                     "sip:bob@example.com", "no answer"),
        ),
        # A malformed field is no information, never an error.
        ("History-Info: <sip:bob@exa mple.com;index=1\r\n",
         Answerer("sip:bob@example.com", "sip:carol@127.0.0.1:5072")),
    ],
)  # fmt: skip
def test_who_answered(extra: str, expected: Answerer) -> None:
    assert who_answered(_response(extra)) == expected
