"""Rule evaluation for a call: forwarding, find-me steps, schedules, regions, DND,
blocklists, loops; property tests that it always ends and never rings twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from features_helpers import binding, directory
from hypothesis import given
from hypothesis import strategies as st

from sipline.server.features.decisions import Exhausted, Outcome, Reject, RingStep
from sipline.server.features.forwarding import CallInfo, CallRouter, RoutingSettings, target_key
from sipline.storage.base import DeviceInfo

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
A1, A2 = "sip:alice@192.0.2.1:5060", "sip:alice@192.0.2.2:5060"
B1 = "sip:bob@192.0.2.3:5060"
VM = "sip:vm@192.0.2.9:5060"
# Tuesday 2026-12-01 10:00 in Berlin (09:00 UTC).
TUESDAY_10 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()


def call(
    at: float = TUESDAY_10, caller: str = "dave@other.example", region: str | None = None
) -> CallInfo:
    return CallInfo(ALICE, caller, at, region)


def uris(decision: object) -> list[str]:
    assert isinstance(decision, RingStep), decision
    return [t.uri for t in decision.targets]


def headers(decision: object, name: str) -> list[str]:
    assert isinstance(decision, RingStep)
    return [v for n, v in decision.targets[0].headers if n == name]


def test_default_rings_all_devices_together_then_lower_q() -> None:
    d = directory({ALICE: [binding(ALICE, A1), binding(ALICE, A2, q=0.5), binding(ALICE, B1)]})
    r = CallRouter(call(), d)
    first = r.start()
    assert uris(first) == [A1, B1] and first.timeout_s is None
    assert headers(first, "History-Info") == []  # not forwarded: nothing to tell
    assert uris(r.step_failed(Outcome.UNAVAILABLE, None)) == [A2]
    assert r.step_failed(Outcome.BUSY, None) == Exhausted(486, "Busy Here")


def test_busy_forward_with_history_info_and_diversion() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1)], BOB: [binding(BOB, B1)]},
        {ALICE: {"forward": {"busy": "bob@example.com"}}},
    )
    r = CallRouter(call(), d)
    assert uris(r.start()) == [A1]
    step = r.step_failed(Outcome.BUSY, None)
    assert uris(step) == [B1]
    assert headers(step, "History-Info") == [
        "<sip:alice@example.com?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%20Here%22>;index=1, "
        "<sip:bob@example.com;cause=486>;index=1.1;mp=1, "
        "<sip:bob@192.0.2.3:5060>;index=1.1.1;rc=1.1"
    ]
    assert headers(step, "Diversion") == [
        "<sip:alice@example.com>;reason=user-busy;counter=1;privacy=off"
    ]


def test_history_headers_can_be_switched_off() -> None:
    d = directory({BOB: [binding(BOB, B1)]}, {ALICE: {"forward": {"always": BOB}}})
    r = CallRouter(call(), d, RoutingSettings(history_info=False, diversion=True))
    step = r.start()
    assert uris(step) == [B1]
    assert headers(step, "History-Info") == []
    assert headers(step, "Diversion") == [
        "<sip:alice@example.com>;reason=unconditional;counter=1;privacy=off"
    ]


def test_no_answer_gets_a_timeout_then_forwards() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1)]},
        {ALICE: {"forward": {"no_answer": VM, "no_answer_s": 2}}},
    )
    r = CallRouter(call(), d)
    first = r.start()
    assert isinstance(first, RingStep) and first.timeout_s == 2.0
    nxt = r.step_failed(Outcome.NO_ANSWER, None)
    assert uris(nxt) == [VM]
    assert "reason=no-answer" in headers(nxt, "Diversion")[0]
    assert "cause%3D408" in headers(nxt, "History-Info")[0]
    assert r.step_failed(Outcome.NO_ANSWER, None) == Exhausted(
        480, "Temporarily Unavailable (no answer)"
    )


def test_unavailable_forward_when_no_device_is_registered() -> None:
    d = directory({}, {ALICE: {"forward": {"unavailable": VM, "busy": "bob@example.com"}}})
    r = CallRouter(call(), d)
    assert uris(r.start()) == [VM]


def test_find_me_steps_ring_in_order_with_their_timeouts() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1), binding(ALICE, A2)], BOB: [binding(BOB, B1)]},
        {
            ALICE: {
                "ring": [
                    {"targets": ["device:desk"], "timeout_s": 5},
                    {"targets": ["devices", "bob@example.com"], "timeout_s": 10},
                    {"targets": ["sip:+4917012345@gw.example.net"]},
                ]
            }
        },
        [DeviceInfo(ALICE, A1, label="desk")],
    )
    r = CallRouter(call(), d)
    s1 = r.start()
    assert uris(s1) == [A1] and s1.timeout_s == 5
    s2 = r.step_failed(Outcome.NO_ANSWER, None)
    assert uris(s2) == [A2, B1] and s2.timeout_s == 10  # A1 rang already: not again
    s3 = r.step_failed(Outcome.NO_ANSWER, None)
    assert uris(s3) == ["sip:+4917012345@gw.example.net"]
    assert isinstance(r.step_failed(Outcome.UNAVAILABLE, None), Exhausted)


def test_dnd_busy_forward_and_plain_dnd() -> None:
    d = directory({ALICE: [binding(ALICE, A1)]}, {ALICE: {"dnd": True}})
    assert CallRouter(call(), d).start() == Reject(486, "Busy Here (do not disturb)")
    d = directory({ALICE: [binding(ALICE, A1)]}, {ALICE: {"dnd": True, "forward": {"busy": VM}}})
    step = CallRouter(call(), d).start()
    assert uris(step) == [VM]
    assert "reason=do-not-disturb" in headers(step, "Diversion")[0]


def test_blocked_caller_is_declined_even_with_forwarding() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1)]},
        {ALICE: {"block": ["*@spam.example"], "forward": {"always": VM}}},
    )
    assert CallRouter(call(caller="eve@spam.example"), d).start() == Reject(603, "Decline")
    assert uris(CallRouter(call(), d).start()) == [VM]


def test_forward_chain_uses_each_users_rules_and_stops_at_loops() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1)], BOB: [binding(BOB, B1)]},
        {
            ALICE: {"forward": {"busy": BOB}},
            BOB: {"forward": {"busy": ALICE, "unavailable": CAROL}},
        },
    )
    r = CallRouter(call(), d)
    assert uris(r.start()) == [A1]
    assert uris(r.step_failed(Outcome.BUSY, None)) == [B1]
    # Bob busy forwards back to Alice: a loop, so the search ends.
    assert r.step_failed(Outcome.BUSY, None) == Exhausted(
        480, "Temporarily Unavailable (forwarding loop)"
    )


def test_chain_depth_is_bounded() -> None:
    users = [f"u{i}@example.com" for i in range(10)]
    rules = {u: {"forward": {"always": users[i + 1]}} for i, u in enumerate(users[:-1])}
    rules[ALICE] = {"forward": {"always": users[0]}}
    d = directory({}, rules)
    decision = CallRouter(call(), d, RoutingSettings(max_depth=3)).start()
    assert decision == Exhausted(480, "Temporarily Unavailable (forwarding chain too long)")


def test_time_of_day_rules_choose_the_routing() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1), binding(ALICE, A2)]},
        {
            ALICE: {
                "zone": "Europe/Berlin",
                "holidays": ["2026-12-24..2026-12-26"],
                "rules": [
                    {
                        "name": "holiday",
                        "on_holidays": True,
                        "reject": {"status": 480, "reason": "On holiday"},
                    },
                    {
                        "name": "office",
                        "days": ["mon-fri"],
                        "hours": ["09:00-17:00"],
                        "except_holidays": True,
                        "ring": ["device:desk"],
                    },
                    {
                        "name": "evening",
                        "hours": ["17:00-23:00"],
                        "except_holidays": True,
                        "forward": VM,
                    },
                ],
            }
        },
        [DeviceInfo(ALICE, A1, label="desk"), DeviceInfo(ALICE, A2, label="mobile")],
    )
    assert uris(CallRouter(call(), d).start()) == [A1]
    evening = datetime(2026, 12, 1, 18, 0, tzinfo=UTC).timestamp()  # 19:00 in Berlin
    step = CallRouter(call(at=evening), d).start()
    assert uris(step) == [VM] and "reason=time-of-day" in headers(step, "Diversion")[0]
    christmas_eve = datetime(2026, 12, 24, 18, 0, tzinfo=UTC).timestamp()
    assert CallRouter(call(at=christmas_eve), d).start() == Reject(480, "On holiday")
    night = datetime(2026, 12, 1, 23, 30, tzinfo=UTC).timestamp()
    assert uris(CallRouter(call(at=night), d).start()) == [A1, A2]  # no rule: all devices


def test_region_rules_for_caller_and_callee() -> None:
    infos = [
        DeviceInfo(ALICE, A1, region="berlin", updated_at=10),
        DeviceInfo(ALICE, A2, region="munich", updated_at=20),
    ]
    doc: dict[str, Any] = {
        "rules": [
            {
                "name": "berlin callers",
                "caller_region": "berlin",
                "forward": "sip:office@berlin.example",
            },
            {"name": "where I am", "ring": ["region:here"]},
        ]
    }
    d = directory({ALICE: [binding(ALICE, A1), binding(ALICE, A2)]}, {ALICE: doc}, infos)
    assert uris(CallRouter(call(region="berlin"), d).start()) == ["sip:office@berlin.example"]
    # Alice's latest device is in Munich: only it rings.
    assert uris(CallRouter(call(region="hamburg"), d).start()) == [A2]
    doc2 = {"rules": [{"name": "in munich", "callee_region": "munich", "reject": 480}]}
    d2 = directory({ALICE: [binding(ALICE, A1), binding(ALICE, A2)]}, {ALICE: doc2}, infos)
    assert CallRouter(call(), d2).start() == Reject(480, None)


def test_declined_ends_the_search() -> None:
    d = directory(
        {ALICE: [binding(ALICE, A1)]}, {ALICE: {"forward": {"busy": VM, "unavailable": VM}}}
    )
    r = CallRouter(call(), d)
    r.start()
    assert r.step_failed(Outcome.DECLINED, None) == Exhausted(603, "Decline")


def test_target_key_ignores_parameters() -> None:
    assert target_key("sip:a@h:5060;transport=udp") == target_key("sip:a@H:5060")
    assert target_key("sip:a@h:5060") != target_key("sip:a@h:5062")


# -- properties ---------------------------------------------------------------------------------
USERS = [f"u{i}@example.com" for i in range(5)]
EXTERNAL = ["sip:x@ext.example", "sip:y@ext.example", "tel:+15550100"]
CONTACTS = [f"sip:d{i}@192.0.2.{i}:5060" for i in range(6)]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[str, list[Any]], dict[str, dict[str, Any]]]:
    devices = {
        u: [
            binding(u, c)
            for c in draw(st.lists(st.sampled_from(CONTACTS), max_size=3, unique=True))
        ]
        for u in USERS
    }
    rules: dict[str, dict[str, Any]] = {}
    for u in USERS:
        others = [v for v in USERS if v != u] + EXTERNAL
        doc: dict[str, Any] = {}
        forward = {
            k: draw(st.sampled_from(others))
            for k in draw(st.sets(st.sampled_from(["always", "busy", "no_answer", "unavailable"])))
        }
        if forward:
            doc["forward"] = forward
        if draw(st.booleans()):
            targets = st.sampled_from(["devices", *USERS, *EXTERNAL, *CONTACTS])
            doc["ring"] = [
                {"targets": draw(st.lists(targets, min_size=1, max_size=3)), "timeout_s": 5}
                for _ in range(draw(st.integers(1, 3)))
            ]
        if draw(st.booleans()):
            doc["dnd"] = True
        rules[u] = doc
    return devices, rules


OUTCOMES = st.sampled_from(list(Outcome))


@given(worlds(), st.lists(OUTCOMES, min_size=60, max_size=60), st.integers(1, 6))
def test_routing_always_ends_and_never_rings_a_target_twice(
    world: tuple[dict[str, list[Any]], dict[str, dict[str, Any]]],
    outcomes: list[Outcome],
    depth: int,
) -> None:
    devices, rules = world
    d = directory(devices, rules)
    router = CallRouter(
        CallInfo(USERS[0], "z@ext.example", TUESDAY_10), d, RoutingSettings(max_depth=depth)
    )
    rung: set[object] = set()
    decision = router.start()
    steps = 0
    while isinstance(decision, RingStep):
        steps += 1
        assert steps < len(outcomes), "routing did not end"
        assert decision.targets, "a step with nothing to ring"
        for t in decision.targets:
            key = target_key(t.uri)
            assert key not in rung, f"{t.uri} rung twice"
            rung.add(key)
        decision = router.step_failed(outcomes[steps], None)
    assert isinstance(decision, Reject | Exhausted)
    assert len(router.legs) <= depth + 1
