"""Time-of-day routing, locations from REGISTER (Geolocation + PIDF-LO, RFC 6442),
location-based routing, and emergency calls reaching the PSAP for the caller's
location with that location attached, end to end through a `SipServer`."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from features_sip import DOMAIN, Phone, SippUas, at, running_server
from interop_helpers import HOST

from sipline.server.features.emergency import split_multipart
from sipline.server.features.location import Region, parse_pidf
from sipline.storage.sqlite import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

ALICE = f"sip:alice@{DOMAIN}"
TUESDAY_10 = at("2026-12-01 10:00 Europe/Berlin")


def pidf(lat: float, lon: float) -> bytes:
    return (
        '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml"'
        ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="pres:alice@example.com">'
        '<dm:device id="phone"><gp:geopriv><gp:location-info><gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
        f"<gml:pos>{lat} {lon}</gml:pos></gml:Point></gp:location-info><gp:usage-rules/>"
        "</gp:geopriv></dm:device></presence>"
    ).encode()


def geolocated(lat: float, lon: float) -> dict[str, object]:
    """REGISTER extras carrying a location by value (RFC 6442 §3.1, §4.1)."""
    body = (
        b"--geo\r\nContent-Type: application/pidf+xml\r\nContent-ID: <here@phone.example>\r\n\r\n"
        + pidf(lat, lon)
        + b"\r\n--geo--\r\n"
    )
    return {
        "extra": [("Geolocation", "<cid:here@phone.example>")],
        "body": body,
        "content_type": "multipart/mixed;boundary=geo",
    }


BERLIN = Region("berlin", box=(52.3, 13.0, 52.7, 13.8))
MUNICH = Region("munich", box=(48.0, 11.3, 48.3, 11.8))


@pytest.fixture
async def phone() -> AsyncIterator[Phone]:
    p = await Phone().start()
    yield p
    await p.close()


async def test_time_of_day_routing_follows_the_clock(tmp_path: Path, phone: Phone) -> None:
    async with running_server(tmp_path, wall=TUESDAY_10) as server:
        desk = await SippUas("uas_answer", tmp_path).start()
        try:
            assert (
                await phone.register(server.target, "alice", desk.contact("alice"))
            ).status == 200
            rules = {
                "zone": "Europe/Berlin",
                "holidays": ["2026-12-24..2026-12-26"],
                "rules": [
                    {
                        "name": "office",
                        "days": ["mon-fri"],
                        "hours": ["09:00-17:00"],
                        "except_holidays": True,
                        "ring": ["devices"],
                    },
                    {
                        "name": "evening",
                        "hours": ["17:00-23:00"],
                        "except_holidays": True,
                        "reject": {"status": 480, "reason": "Out of office"},
                    },
                    {"name": "holidays", "on_holidays": True, "forward": "bob@example.com"},
                ],
            }
            await server.set_rules("alice@example.com", json.dumps(rules))
            call = phone.invite(server.target, ALICE)
            ok = await call.final()
            assert ok.status == 200
            await phone.hang_up(call, ok)
            assert await desk.finish() == 0
            server.clock.wall_s = at("2026-12-01 19:00 Europe/Berlin")
            evening = await phone.invite(server.target, ALICE).final()
            assert (evening.status, evening.reason) == (480, "Out of office")
            # Christmas Eve: forwarded to bob, who has no device.
            server.clock.wall_s = at("2026-12-24 19:00 Europe/Berlin")
            holiday = await phone.invite(server.target, ALICE).final()
            assert holiday.status == 480 and holiday.reason == "Temporarily Unavailable"
        finally:
            await desk.stop()
    assert len(desk.received("INVITE")) == 1


async def test_register_geolocation_sets_the_region_and_routing_follows_it(
    tmp_path: Path, phone: Phone
) -> None:
    async with running_server(tmp_path, wall=TUESDAY_10, regions=[BERLIN, MUNICH]) as server:
        mobile = await SippUas("uas_answer", tmp_path).start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as desk:
            desk.bind((HOST, 0))
            desk.setblocking(False)
            desk_contact = f"sip:alice-desk@{HOST}:{desk.getsockname()[1]}"
            try:
                r1 = await phone.register(
                    server.target, "alice", desk_contact, **geolocated(52.52, 13.405)
                )  # type: ignore[arg-type]
                assert r1.status == 200
                server.clock.wall_s += 60  # the mobile registers later: it is where alice is now
                r2 = await phone.register(
                    server.target,
                    "alice",
                    mobile.contact("alice-mobile"),
                    **geolocated(48.137, 11.575),
                )  # type: ignore[arg-type]
                assert r2.status == 200
                await server.set_rules("alice@example.com", json.dumps({"ring": ["region:here"]}))
                call = phone.invite(server.target, ALICE)
                ok = await call.final()
                assert ok.status == 200
                await phone.hang_up(call, ok)
                assert await mobile.finish() == 0
            finally:
                await mobile.stop()
            with pytest.raises(BlockingIOError):
                desk.recv(65535)  # the desk phone in Berlin was never rung
    store = SqliteStore(tmp_path / "sipline.db")
    try:
        regions = {
            i.device: (i.region, i.source) for i in store.list_device_info("alice@example.com")
        }
        assert store.get_device_info("alice@example.com", desk_contact) is not None
    finally:
        store.close()
    assert regions[desk_contact] == ("berlin", "geolocation")
    assert regions[mobile.contact("alice-mobile")] == ("munich", "geolocation")


async def test_caller_region_from_the_source_network_picks_the_gateway(
    tmp_path: Path, phone: Phone
) -> None:
    office = Region("office-lan", networks=(__import__("ipaddress").ip_network("127.0.0.1/32"),))
    async with running_server(tmp_path, wall=TUESDAY_10, regions=[office, BERLIN]) as server:
        gateway = await SippUas("uas_answer", tmp_path).start()
        try:
            rules = {
                "rules": [
                    {
                        "name": "local callers",
                        "caller_region": "office-lan",
                        "forward": gateway.contact("sales-gw"),
                    }
                ]
            }
            await server.set_rules("bob@example.com", json.dumps(rules))
            call = phone.invite(server.target, f"sip:bob@{DOMAIN}")
            ok = await call.final()
            assert ok.status == 200
            await phone.hang_up(call, ok)
            assert await gateway.finish() == 0
        finally:
            await gateway.stop()
    (invite,) = gateway.received("INVITE")
    assert invite.uri_text == gateway.contact("sales-gw")


async def test_emergency_call_reaches_the_regional_psap_with_location_and_callback(
    tmp_path: Path, phone: Phone
) -> None:
    berlin_psap = await SippUas("uas_answer", tmp_path).start()
    munich_psap = await SippUas("uas_busy", tmp_path).start()
    berlin = Region("berlin", box=BERLIN.box, psap=berlin_psap.contact("psap"))
    munich = Region("munich", box=MUNICH.box, psap=munich_psap.contact("psap"))
    try:
        async with running_server(
            tmp_path,
            wall=TUESDAY_10,
            regions=[munich, berlin],
            authenticate_calls=True,  # alice sends no credentials: still connected
            emergency_psap=munich_psap.contact("default-psap"),
        ) as server:
            contact = f"sip:alice@{HOST}:{phone.port}"
            assert (
                await phone.register(server.target, "alice", contact, **geolocated(52.52, 13.405))
            ).status == 200  # type: ignore[arg-type]
            # Alice's own rules (forward everything, DND) have no say over emergency calls.
            await server.set_rules(
                "alice@example.com",
                json.dumps({"dnd": True, "forward": {"always": "bob@example.com"}}),
            )
            refused = await phone.invite(server.target, "sip:bob@example.com", from_=ALICE).final()
            assert refused.status == 407  # an ordinary call is challenged
            call = phone.invite(server.target, "urn:service:sos", from_=ALICE)
            ok = await call.final()
            assert ok.status == 200, ok
            await phone.hang_up(call, ok)
            assert await berlin_psap.finish() == 0
    finally:
        await berlin_psap.stop()
        await munich_psap.stop()
    assert munich_psap.received() == []
    (invite,) = berlin_psap.received("INVITE")
    assert invite.uri_text == berlin_psap.contact("psap")
    # Alice sent no credentials: connected, but her identity is not asserted (RFC 3325 §9.1).
    assert invite.headers.get("p-asserted-identity") is None
    assert invite.headers.get("priority") == "emergency"
    geo = invite.headers.get("geolocation") or ""
    assert geo.startswith("<cid:")
    cid = geo[5:-1]
    parts = split_multipart(invite.headers.get("content-type") or "", invite.body)
    kinds = {p[0]["content-type"]: p for p in parts}
    assert set(kinds) == {"application/sdp", "application/pidf+xml"}
    headers, body = kinds["application/pidf+xml"]
    assert headers["content-id"] == f"<{cid}>"
    location = parse_pidf(body)
    assert (location.lat, location.lon) == (52.52, 13.405)
    assert kinds["application/sdp"][1].startswith(b"v=0")
