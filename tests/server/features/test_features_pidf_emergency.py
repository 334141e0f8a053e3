"""PIDF-LO (RFC 4119 / RFC 5491) parsing and building, regions, emergency calls."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.core.message import Request, parse_message
from sipline.core.uri import parse_uri
from sipline.server.features.decisions import Exhausted, Outcome, Reject, RingStep
from sipline.server.features.emergency import (
    EmergencySession,
    EmergencySettings,
    caller_location,
    is_emergency_uri,
    location_from_request,
    split_multipart,
)
from sipline.server.features.forwarding import Device
from sipline.server.features.location import (
    Location,
    LocationError,
    Region,
    build_pidf,
    find_region,
    parse_pidf,
    region_by_network,
)

# RFC 4119 §2.2.1 style: the location inside a tuple's status.
RFC4119 = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:cl="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
    entity="pres:geotarget@example.com">
 <tuple id="sg89ae">
  <status>
   <gp:geopriv>
     <gp:location-info>
       <cl:civicAddress>
         <cl:country>US</cl:country>
         <cl:A1>New York</cl:A1>
         <cl:A3>New York</cl:A3>
         <cl:HNO>123</cl:HNO>
       </cl:civicAddress>
     </gp:location-info>
     <gp:usage-rules/>
   </gp:geopriv>
  </status>
  <timestamp>2003-06-22T20:57:29Z</timestamp>
 </tuple>
</presence>
"""

# RFC 5491 §3 style: a device with a geodetic point.
RFC5491 = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml"
 entity="pres:alice@example.com">
 <dm:device id="d1"><gp:geopriv><gp:location-info>
  <gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>52.5200 13.4050</gml:pos></gml:Point>
 </gp:location-info><gp:usage-rules/><gp:method>GPS</gp:method></gp:geopriv></dm:device>
</presence>
"""

BERLIN = Region("berlin", box=(52.3, 13.0, 52.7, 13.8), psap="sip:psap-berlin@127.0.0.1:5091")
NYC = Region(
    "nyc",
    civic=(("country", "US"), ("A1", "New York")),
    networks=(ipaddress.ip_network("127.0.0.0/30"),),
    point=(40.71, -74.0),
    psap="sip:psap-nyc@127.0.0.1:5092",
)
REGIONS = (BERLIN, NYC)


def test_parse_civic_and_geodetic() -> None:
    civic = parse_pidf(RFC4119)
    assert civic.lat is None and civic.civic_value("country") == "US"
    assert civic.civic_value("a3") == "New York"
    geo = parse_pidf(RFC5491)
    assert (geo.lat, geo.lon) == (52.52, 13.405)
    assert find_region(REGIONS, civic) is NYC
    assert find_region(REGIONS, geo) is BERLIN
    assert find_region(REGIONS, Location(0.0, 0.0)) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<presence", "not well-formed"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>', "document type"),
        (b'<presence xmlns="urn:other"/>', "root element"),
        (b'<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', "no geopriv location-info"),
        (RFC5491.replace(b"52.5200 13.4050", b"north"), "is not 'latitude longitude'"),
        (RFC5491.replace(b"52.5200 13.4050", b"152 13"), "outside the globe"),
        (b"x" * 20000, "larger than"),
        # Found by the property test below: expat's LookupError / ValueError escaped.
        (b'<?xml version="1.0" encoding="U"?><presence/>', "unsupported encoding"),
        (b'<?xml version="1.0" encoding="shift_jis"?><presence/>', "unsupported encoding"),
    ],
)
def test_bad_pidf_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(LocationError, match=message):
        parse_pidf(body)


@given(
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
    st.lists(
        st.tuples(
            st.sampled_from(["country", "A1", "A3", "RD"]),
            st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.isprintable()),
        ),
        max_size=3,
        unique_by=lambda kv: kv[0],
    ),
)
def test_built_pidf_parses_back(lat: float, lon: float, civic: list[tuple[str, str]]) -> None:
    loc = Location(round(lat, 6), round(lon, 6), tuple(civic))
    back = parse_pidf(build_pidf('alice"<@example.com', loc))
    assert back.lat is not None and abs(back.lat - loc.lat) < 1e-6  # type: ignore[operator]
    assert back.lon is not None and abs(back.lon - loc.lon) < 1e-6  # type: ignore[operator]
    assert dict(back.civic) == dict(civic)


def test_region_by_network() -> None:
    assert region_by_network(REGIONS, "127.0.0.2") is NYC
    assert region_by_network(REGIONS, "127.0.0.9") is None
    assert region_by_network(REGIONS, "not-an-ip") is None


@pytest.mark.parametrize(
    ("uri", "emergency"),
    [
        ("urn:service:sos", True),
        ("URN:Service:SOS", True),
        ("urn:service:sos.fire", True),
        ("urn:service:sosx", False),
        ("urn:service:counseling", False),
        ("sip:112@example.com", True),
        ("sip:911@example.com;user=phone", True),
        ("tel:112", True),
        ("tel:1-1-2", True),
        ("sip:1120@example.com", False),
        ("sip:alice@example.com", False),
    ],
)
def test_emergency_uris(uri: str, emergency: bool) -> None:
    assert is_emergency_uri(parse_uri(uri), ("112", "911", "urn:service:sos")) is emergency


def invite(extra: str = "", body: bytes = b"v=0\r\n", ctype: str = "application/sdp") -> Request:
    text = (
        "INVITE urn:service:sos SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bK1\r\n"
        "From: <sip:alice@example.com>;tag=1\r\nTo: <urn:service:sos>\r\n"
        "Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"{extra}Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    msg = parse_message(text.encode() + body)
    assert isinstance(msg, Request)
    return msg


def multipart_with(pidf: bytes, cid: str = "loc1@example.com") -> bytes:
    return (
        b"--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n"
        b"--b1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <"
        + cid.encode()
        + b">\r\n\r\n"
        + pidf
        + b"\r\n--b1--\r\n"
    )


def test_location_the_call_carries() -> None:
    req = invite(
        "Geolocation: <cid:loc1@example.com>\r\n",
        multipart_with(RFC5491),
        "multipart/mixed;boundary=b1",
    )
    loc = location_from_request(req)
    assert loc is not None and loc.lat == 52.52
    found = caller_location(req, "127.0.0.9", [], EmergencySettings(regions=REGIONS))
    assert found.region is BERLIN and found.by_value
    # A Content-ID that names no part, or a location by reference, give nothing.
    req = invite(
        "Geolocation: <cid:other@example.com>\r\n",
        multipart_with(RFC5491),
        "multipart/mixed;boundary=b1",
    )
    assert location_from_request(req) is None
    assert location_from_request(invite("Geolocation: <https://lis.example/loc>\r\n")) is None


def test_caller_location_falls_back_to_device_then_network() -> None:
    settings = EmergencySettings(regions=REGIONS)
    dev = Device("sip:alice@127.0.0.5:5060", pidf=RFC5491.decode(), updated_at=5)
    found = caller_location(invite(), "127.0.0.5", [dev], settings)
    assert found.region is BERLIN and not found.by_value and "registered" in found.how
    found = caller_location(invite(), "127.0.0.2", [], settings)
    assert found.region is NYC and found.location is not None and found.location.lat == 40.71
    assert caller_location(invite(), "127.0.0.9", [], settings).region is None


def test_emergency_session_attaches_location_and_callback_and_fails_over() -> None:
    settings = EmergencySettings(psap="sip:psap@127.0.0.1:5099", regions=REGIONS)
    found = caller_location(invite(), "127.0.0.2", [], settings)
    session = EmergencySession(invite(), found, "sip:alice@example.com", settings, "proxy.example")
    step = session.start()
    assert isinstance(step, RingStep)
    assert [t.uri for t in step.targets] == ["sip:psap-nyc@127.0.0.1:5092"]
    h = dict(step.set_headers)
    assert h["P-Asserted-Identity"] == "<sip:alice@example.com>"
    assert h["Priority"] == "emergency"
    cid = h["Geolocation"].removeprefix("<cid:").removesuffix(">")
    assert step.body is not None
    parts = split_multipart(h["Content-Type"], step.body)
    assert [p[0]["content-type"] for p in parts] == ["application/sdp", "application/pidf+xml"]
    assert parts[0][1] == b"v=0\r\n"
    assert parts[1][0]["content-id"] == f"<{cid}>"
    assert parse_pidf(parts[1][1]).lat == 40.71
    # The regional PSAP fails: the default one is next, then nothing.
    nxt = session.step_failed(Outcome.UNAVAILABLE, None)
    assert isinstance(nxt, RingStep) and nxt.targets[0].uri == "sip:psap@127.0.0.1:5099"
    assert isinstance(session.step_failed(Outcome.UNAVAILABLE, None), Exhausted)


def test_emergency_psaps_in_turn_with_a_hop_timeout_and_no_unverified_identity() -> None:
    settings = EmergencySettings(
        psap="sip:psap@192.0.2.1",
        fallbacks=("sip:psap@192.0.2.2", "sip:psap@192.0.2.1"),  # a repeat is rung once
        hop_timeout_s=2.5,
    )
    found = caller_location(invite(), "127.0.0.9", [], settings)
    session = EmergencySession(
        invite(), found, "sip:carol@example.com", settings, "h", verified=False
    )
    rung = []
    step = session.start()
    while isinstance(step, RingStep):
        assert step.hop_timeout_s == 2.5
        assert "P-Asserted-Identity" not in dict(step.set_headers)  # RFC 3325 §9.1
        assert dict(step.set_headers)["Priority"] == "emergency"
        rung.append(step.targets[0].uri)
        step = session.step_failed(Outcome.UNAVAILABLE, None)
    assert rung == ["sip:psap@192.0.2.1", "sip:psap@192.0.2.2"]
    assert isinstance(step, Exhausted) and step.status == 503


def test_emergency_without_any_psap_is_answered() -> None:
    found = caller_location(invite(), "127.0.0.9", [], EmergencySettings())
    session = EmergencySession(invite(), found, "sip:alice@example.com", EmergencySettings(), "h")
    assert isinstance(session.start(), Reject)


def test_location_sent_by_the_caller_is_passed_on_unchanged() -> None:
    req = invite(
        "Geolocation: <cid:loc1@example.com>\r\n",
        multipart_with(RFC5491),
        "multipart/mixed;boundary=b1",
    )
    settings = EmergencySettings(regions=REGIONS)
    session = EmergencySession(
        req, caller_location(req, "127.0.0.9", [], settings), "sip:a@b", settings, "h"
    )
    step = session.start()
    assert isinstance(step, RingStep) and step.body is None
    assert "Geolocation" not in dict(step.set_headers)


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=80),
    st.sampled_from(
        ["multipart/mixed;boundary=b1", "application/pidf+xml", "multipart/mixed", "text/plain"]
    ),
    st.binary(max_size=400) | st.builds(multipart_with, st.binary(max_size=200)),
)
def test_any_geolocation_and_body_give_a_location_or_none(
    geo: str, ctype: str, body: bytes
) -> None:
    value = geo.replace("\r", " ").replace("\n", " ").strip() or "x"
    req = invite(f"Geolocation: <cid:{value}>\r\n", body, ctype)
    found = location_from_request(req)
    assert found is None or isinstance(found, Location)
    located = caller_location(req, value, [], EmergencySettings(regions=REGIONS))
    assert located.region in (None, *REGIONS)


@given(
    st.binary(max_size=600)
    | st.builds(
        lambda cut, junk: RFC5491[:cut] + junk + RFC5491[cut:],
        st.integers(0, len(RFC5491)),
        st.binary(max_size=20),
    )
)
def test_parse_pidf_raises_only_its_own_error(data: bytes) -> None:
    try:
        loc = parse_pidf(data)
    except LocationError:
        return
    assert loc.lat is not None or loc.civic
