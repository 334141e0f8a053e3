"""The server's planner over a real store: reloading rules, sessions it opens (or
leaves to the proxy), and device locations learnt from registrations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sipline.core.message import Request, parse_message
from sipline.server.features.emergency import EmergencySession, EmergencySettings
from sipline.server.features.forwarding import CallRouter
from sipline.server.features.location import Region
from sipline.server.features.routing_service import ServerRoutePlanner
from sipline.server.features.settings import FeatureSettings
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Binding, DeviceInfo

PIDF = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
    ' xmlns:gml="http://www.opengis.net/gml"><gp:geopriv><gp:location-info><gml:Point>'
    "<gml:pos>52.5 13.4</gml:pos></gml:Point></gp:location-info></gp:geopriv></presence>"
)
BERLIN = Region("berlin", box=(52.3, 13.0, 52.7, 13.8))
import ipaddress  # noqa: E402

LAB = Region("lab", networks=(ipaddress.ip_network("192.0.2.0/24"),))


def request(text: str, body: str = "") -> Request:
    msg = parse_message(
        (text.replace("\n", "\r\n") + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()
    )
    assert isinstance(msg, Request)
    return msg


def register(contact: str, geolocated: bool) -> Request:
    extra = "Geolocation: <cid:g@x>\nContent-Type: application/pidf+xml\n" if geolocated else ""
    return request(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\n"
        "From: <sip:alice@example.com>;tag=1\nTo: <sip:alice@example.com>\nCall-ID: r1\n"
        f"CSeq: 1 REGISTER\nContact: <{contact}>\n{extra}",
        PIDF if geolocated else "",
    )


def invite(ruri: str, caller: str = "sip:bob@example.com") -> Request:
    return request(
        f"INVITE {ruri} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK2\n"
        f"From: <{caller}>;tag=2\nTo: <{ruri}>\nCall-ID: i1\nCSeq: 1 INVITE\nMax-Forwards: 70\n"
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = await AsyncStore.open(tmp_path / "sipline.db")
    yield s
    await s.close()


def planner(store: AsyncStore, **extra: Any) -> ServerRoutePlanner:
    return ServerRoutePlanner(
        store,
        is_local=lambda host: host == "example.com",
        bindings=lambda aor: store.bindings(aor, now=100.0),
        settings=FeatureSettings(
            emergency=EmergencySettings(psap="sip:psap@192.0.2.1", regions=(BERLIN, LAB))
        ),
        wall=lambda: 100.0,
        host=lambda: "proxy.example",
        **extra,
    )


def binding(contact: str) -> Binding:
    return Binding("alice@example.com", contact, 1000.0, "r1", 1, updated_at=100.0)


async def test_sessions_and_reloads(store: AsyncStore) -> None:
    p = planner(store)
    await p.start()
    try:
        # No rules and no device: left to the proxy (404 or 480).
        assert p.session(invite("sip:alice@example.com"), "192.0.2.9") is None
        assert p.session(invite("sip:x@elsewhere.example"), "192.0.2.9") is None
        assert isinstance(p.session(invite("urn:service:sos"), "192.0.2.9"), EmergencySession)
        assert p.exempt_from_auth(invite("sip:112@example.com"))
        assert not p.exempt_from_auth(invite("sip:alice@example.com"))
        await store.write(
            store.store.set_route_rules, "alice@example.com", json.dumps({"dnd": True}), 5.0
        )
        await p.refresh()
        session = p.session(invite("sip:alice@example.com"), "192.0.2.9")
        assert isinstance(session, CallRouter)
        assert session.call.caller == "bob@example.com" and session.call.caller_region == "lab"
    finally:
        await p.stop()


async def test_a_callee_without_rules_takes_the_plain_proxy_path(store: AsyncStore) -> None:
    """Registered, no rules: the proxy rings the devices itself (no plan to pay for),
    unless missed-call notices want the features' path to see the call go unanswered."""
    await store.update_bindings("alice@example.com", upsert=[binding("sip:a@192.0.2.5")])
    wanted = [False]
    missed: list[tuple[str, str]] = []
    p = planner(
        store, on_missed=lambda a, c: missed.append((a, c)), missed_wanted=lambda: wanted[0]
    )
    await p.start()
    try:
        assert p.session(invite("sip:alice@example.com"), "192.0.2.9") is None
        wanted[0] = True
        assert isinstance(p.session(invite("sip:alice@example.com"), "192.0.2.9"), CallRouter)
        # Without `missed_wanted`, a planner told of missed calls keeps every call.
        plain = planner(store, on_missed=lambda a, c: None)
        assert isinstance(plain.session(invite("sip:alice@example.com"), "192.0.2.9"), CallRouter)
        assert planner(store).session(invite("sip:alice@example.com"), "192.0.2.9") is None
    finally:
        await p.stop()


async def test_registrations_record_locations_and_forget_stale_ones(store: AsyncStore) -> None:
    p = planner(store)
    await p.start()
    try:
        a, b = "sip:alice@192.0.2.10:5060", "sip:alice@192.0.2.11:5060"
        await store.update_bindings("alice@example.com", upsert=[binding(a)])
        await p.record_registration(register(a, geolocated=True), "198.51.100.7")
        info = store.store.get_device_info("alice@example.com", a)
        assert info is not None and (info.region, info.source) == ("berlin", "geolocation")
        assert info.pidf is not None and "52.5 13.4" in info.pidf
        # A label set by hand survives; the first device goes away, the second registers
        # from the lab network: its region is the network's, and the stale record goes.
        store.store.set_device_info(DeviceInfo("alice@example.com", "sip:kept@192.0.2.12", "desk"))
        await store.update_bindings("alice@example.com", upsert=[binding(b)], remove=[a])
        await p.record_registration(register(b, geolocated=False), "192.0.2.11")
        records = {
            i.device: (i.region, i.source)
            for i in store.store.list_device_info("alice@example.com")
        }
        assert records == {b: ("lab", "network"), "sip:kept@192.0.2.12": (None, "manual")}
        assert [d.region for d in p.directory.devices("alice@example.com")] == ["lab"]
    finally:
        await p.stop()
