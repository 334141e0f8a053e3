"""Rule documents: what is accepted, and the clear errors for what is not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from features_helpers import TODAY

from sipline.server.features.rules import RuleError, UserRules, caller_matches, target_aor
from sipline.server.features.rules_document import check_forward_loops, parse_rules

ALICE = "alice@example.com"

FULL: dict[str, Any] = {
    "zone": "Europe/Berlin",
    "holidays": ["2026-12-24..2026-12-26"],
    "block": ["*@spam.example", "sip:mallory@example.com"],
    "ring": [{"targets": ["devices"], "timeout_s": 10}, {"targets": ["sip:+49170@gw.example.net"]}],
    "forward": {"busy": "sip:vm@example.com", "no_answer": "bob@example.com", "no_answer_s": 15},
    "rules": [
        {
            "name": "office",
            "days": ["mon-fri"],
            "hours": ["09:00-17:00"],
            "except_holidays": True,
            "ring": [{"targets": ["device:desk"]}],
        },
        {
            "name": "evening",
            "days": ["mon-fri"],
            "hours": ["17:00-23:00"],
            "except_holidays": True,
            "ring": [{"targets": ["device:mobile"]}],
        },
        {
            "name": "holidays",
            "on_holidays": True,
            "reject": {"status": 480, "reason": "On holiday"},
        },
        {"name": "berlin callers", "caller_region": "berlin", "forward": "sip:desk@berlin.example"},
    ],
}


def parse(doc: dict[str, Any], **kw: Any) -> UserRules:
    return parse_rules(ALICE, doc, today=TODAY, **kw)


def test_full_document_round_trips() -> None:
    rules = parse(FULL, regions=["berlin", "munich"])
    assert rules.zone == "Europe/Berlin"
    assert [r.name for r in rules.rules] == ["office", "evening", "holidays", "berlin callers"]
    assert rules.forward.no_answer_s == 15.0
    again = parse(json.loads(json.dumps(rules.to_doc())))
    assert again == rules


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"zone": "Europe/Berlim"}, r"^zone: unknown time zone 'Europe/Berlim'"),
        ({"colour": "red"}, r"^colour: unknown key"),
        ({"forward": {"busy": "alice@example.com"}}, r"^forward.busy: .* to itself"),
        ({"forward": {"always": "sip:alice@EXAMPLE.com"}}, r"^forward.always: .* to itself"),
        ({"forward": {"no_answer_s": 10}}, r"^forward.no_answer_s: needs forward.no_answer"),
        ({"forward": {"busy": "not a target"}}, r"^forward.busy: 'not a target' is not a target"),
        ({"forward": {"busy": "http://example.com"}}, r"^forward.busy: .* sip:, sips: or tel:"),
        ({"ring": []}, r"^ring: must be a non-empty list"),
        ({"ring": [{"targets": ["devices"], "timeout_s": 0}]}, r"^ring\[0\].timeout_s"),
        ({"ring": [{"targets": ["device:"]}]}, r"^ring\[0\].targets: 'device:' needs a name"),
        ({"rules": [{"name": "x"}]}, r"^rules\[0\].ring/forward/reject/dnd: give exactly one"),
        ({"rules": [{"ring": ["devices"]}]}, r"^rules\[0\].name: every rule needs a name"),
        (
            {"rules": [{"name": "x", "hours": ["9-17"], "dnd": True}]},
            r"^rules\[0\].hours: '9-17': '9' is not a time",
        ),
        (
            {"rules": [{"name": "x", "on_holidays": True, "dnd": True}]},
            r"^rules\[0\].on_holidays: no holidays are defined",
        ),
        (
            {"rules": [{"name": "x", "days": ["mon"], "reject": {"status": 200}}]},
            r"^rules\[0\].reject.status: must be a 4xx",
        ),
        (
            {"rules": [{"name": "x", "reject": {"status": 480, "reason": "a\r\nX: y"}}]},
            r"^rules\[0\].reject.reason: must be one line",
        ),
        (
            {"rules": [{"name": "x", "dnd": True}, {"name": "y", "days": ["mon"], "dnd": True}]},
            r"^rules\[1\].*can never apply",
        ),
        (
            {"rules": [{"name": "x", "zone": "UTC", "dnd": True}]},
            r"^rules\[0\].zone: only means something",
        ),
    ],
)
def test_bad_documents_are_refused_naming_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse(doc)


def test_unknown_region_is_refused_when_regions_are_known() -> None:
    doc = {"rules": [{"name": "r", "caller_region": "mars", "dnd": True}]}
    with pytest.raises(RuleError, match=r"rules\[0\].caller_region: unknown region 'mars'"):
        parse(doc, regions=["berlin"])
    assert parse(doc).rules[0].caller_region == "mars"  # no region list: not checked


def test_overlapping_schedules_that_contradict_are_refused() -> None:
    doc = {
        "zone": "Europe/Berlin",
        "rules": [
            {
                "name": "office",
                "days": ["mon-fri"],
                "hours": ["09:00-17:00"],
                "ring": ["device:desk"],
            },
            {
                "name": "late",
                "days": ["fri"],
                "hours": ["16:00-20:00"],
                "forward": "bob@example.com",
            },
        ],
    }
    with pytest.raises(RuleError) as info:
        parse(doc)
    text = str(info.value)
    assert "'late'" in text and "'office'" in text and "overlap" in text
    assert "2026-12-04 15:00 UTC" in text  # Friday 16:00 in Berlin


def test_overlaps_that_agree_or_differ_in_conditions_are_accepted() -> None:
    doc = {
        "rules": [
            {"name": "a", "days": ["mon-fri"], "hours": ["09:00-17:00"], "dnd": True},
            {"name": "b", "days": ["fri"], "hours": ["16:00-20:00"], "dnd": True},
            {"name": "c", "caller_region": "x", "days": ["fri"], "reject": 486},
        ]
    }
    assert len(parse(doc).rules) == 3


def test_holidays_excluded_from_office_hours_do_not_contradict() -> None:
    rules = parse(FULL)
    assert rules.rules[0].schedule is not None and rules.rules[0].schedule.exclude


def test_unconditional_forward_loops_are_refused() -> None:
    bob = parse_rules("bob@example.com", {"forward": {"always": "carol@example.com"}}, today=TODAY)
    carol = parse_rules(
        "carol@example.com", {"forward": {"always": "sip:alice@example.com"}}, today=TODAY
    )
    alice = parse({"forward": {"always": "bob@example.com"}})
    others = {"bob@example.com": bob, "carol@example.com": carol}

    def local(host: str) -> bool:
        return host == "example.com"

    with pytest.raises(RuleError, match=r"loop alice@example\.com -> bob@example\.com -> carol"):
        check_forward_loops(ALICE, alice, others.get, local)
    # A chain that leaves for a foreign address ends there.
    check_forward_loops(
        ALICE, parse({"forward": {"always": "sip:x@other.example"}}), others.get, local
    )


def test_caller_patterns() -> None:
    assert caller_matches("*@spam.example", "eve@spam.example")
    assert caller_matches("sip:Bob@EXAMPLE.com", "Bob@example.com")
    assert not caller_matches("sip:Bob@example.com", "bob@example.com")  # users are case-sensitive
    assert caller_matches("anonymous@*", "anonymous@anonymous.invalid")


def test_target_aor() -> None:
    def local(host: str) -> bool:
        return host.lower() == "example.com"

    assert target_aor("bob@Example.com", local) == "bob@example.com"
    assert target_aor("sip:bob@example.com;transport=tcp", local) == "bob@example.com"
    assert target_aor("user:bob@example.com", local) == "bob@example.com"
    assert target_aor("sip:bob@other.example", local) is None
    assert target_aor("tel:+4930123", local) is None
