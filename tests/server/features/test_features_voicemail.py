"""The `voicemail` routing target: a forward to the user's own mailbox, written as an
RFC 4458 voicemail URI, and the mailbox found again from the request that arrives."""

from __future__ import annotations

from datetime import date

import pytest
from features_helpers import binding, directory

from sipline.core.message import parse_message
from sipline.server.features.decisions import Outcome, RingStep
from sipline.server.features.forwarding import CallInfo, CallRouter
from sipline.server.features.rules import RuleError, target_aor
from sipline.server.features.rules_document import parse_rules
from sipline.server.voicemail.address import mailbox_of, voicemail_uri

ALICE = "alice@example.com"
A1 = "sip:alice@192.0.2.1:5060"
VM_URI = "sip:voicemail@example.com;target=sip:alice%40example.com;cause=408"


def test_voicemail_is_a_forward_target_and_not_a_user() -> None:
    rules = parse_rules(
        ALICE, {"forward": {"no_answer": "voicemail", "busy": "voicemail"}}, today=date(2026, 12, 1)
    )
    assert rules.forward.no_answer == "voicemail"
    assert target_aor("voicemail", lambda h: True) is None
    assert target_aor("sip:voicemail@example.com", lambda h: True) is None
    assert target_aor("sip:*98@example.com", lambda h: True) is None
    with pytest.raises(RuleError):  # a forward target, not a device to ring
        parse_rules(ALICE, {"ring": [{"targets": ["voicemail"]}]}, today=date(2026, 12, 1))


def test_no_answer_forwards_to_the_mailbox_with_rfc4458_uri() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1)]},
        {ALICE: {"forward": {"no_answer": "voicemail", "no_answer_s": 2}}},
    )
    r = CallRouter(CallInfo(ALICE, "bob@example.com", 0.0, None), d)
    assert isinstance(r.start(), RingStep)
    step = r.step_failed(Outcome.NO_ANSWER, None)
    assert isinstance(step, RingStep)
    assert [t.uri for t in step.targets] == [VM_URI]
    assert voicemail_uri(ALICE, 486) == VM_URI.replace("408", "486")


def test_busy_forward_cause() -> None:
    d = directory({ALICE: [binding(ALICE, A1)]}, {ALICE: {"forward": {"busy": "voicemail"}}})
    r = CallRouter(CallInfo(ALICE, "bob@example.com", 0.0, None), d)
    r.start()
    step = r.step_failed(Outcome.BUSY, None)
    assert isinstance(step, RingStep)
    assert [t.uri for t in step.targets] == [VM_URI.replace("cause=408", "cause=486")]


def _invite(uri: str, *extra: str) -> bytes:
    lines = [
        f"INVITE {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
        "From: <sip:bob@example.com>;tag=1",
        "To: <sip:alice@example.com>",
        "Call-ID: c1",
        "CSeq: 1 INVITE",
        "Max-Forwards: 70",
        *extra,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_mailbox_from_target_param_history_info_or_diversion() -> None:
    assert mailbox_of(parse_message(_invite(VM_URI))) == ALICE  # type: ignore[arg-type]
    hi = (
        "History-Info: <sip:alice@example.com>;index=1,"
        " <sip:voicemail@example.com;cause=408>;index=1.1;mp=1"
    )
    req = parse_message(_invite("sip:voicemail@example.com", hi))
    assert mailbox_of(req) == ALICE  # type: ignore[arg-type]
    div = "Diversion: <sip:alice@example.com>;reason=no-answer;counter=1"
    req = parse_message(_invite("sip:voicemail@example.com", div))
    assert mailbox_of(req) == ALICE  # type: ignore[arg-type]
    assert mailbox_of(parse_message(_invite("sip:voicemail@example.com"))) is None  # type: ignore[arg-type]


def test_missed_call_is_reported_once_per_user_rung_unanswered() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1)]},
        {ALICE: {"forward": {"no_answer": "voicemail", "no_answer_s": 2}}},
    )
    missed: list[tuple[str, str]] = []
    r = CallRouter(
        CallInfo(ALICE, "bob@example.com", 0.0, None),
        d,
        on_missed=lambda aor, caller: missed.append((aor, caller)),
    )
    r.start()
    assert missed == []
    r.step_failed(Outcome.NO_ANSWER, None)  # on to voicemail: alice missed it
    assert missed == [(ALICE, "bob@example.com")]
    r.step_failed(Outcome.FAILED, None)  # the mailbox leg is no user's device
    assert missed == [(ALICE, "bob@example.com")]


def test_no_device_is_not_a_missed_call() -> None:
    d = directory({ALICE: []}, {ALICE: {"forward": {"unavailable": "voicemail"}}})
    missed: list[tuple[str, str]] = []
    r = CallRouter(
        CallInfo(ALICE, "bob@example.com", 0.0, None),
        d,
        on_missed=lambda aor, caller: missed.append((aor, caller)),
    )
    step = r.start()
    assert isinstance(step, RingStep) and [t.uri for t in step.targets] == [
        VM_URI.replace("cause=408", "cause=404")
    ]
    assert missed == []
