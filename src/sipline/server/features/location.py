"""Where a device or caller is: PIDF-LO bodies (RFC 4119, RFC 5491) and regions.

A location is read from a PIDF-LO document (a geodetic point, or a civic address,
or both) and named by the first configured `Region` that matches it: by civic
fields (country, A1 state, A3 city ...), by a latitude/longitude box, or, for a
device that sent no location, by the network its requests come from. The raw
PIDF-LO is kept so it can be passed on unchanged (to a PSAP, RFC 6442).

Pure: no sockets; XML is parsed from bytes with DTDs refused (no entity expansion).
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

__all__ = [
    "CIVIC_FIELDS",
    "Location",
    "LocationError",
    "Region",
    "build_pidf",
    "find_region",
    "parse_pidf",
    "region_by_network",
]

NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_GEOPRIV = "urn:ietf:params:xml:ns:pidf:geopriv10"
NS_GML = "http://www.opengis.net/gml"
NS_CIVIC = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
NS_DM = "urn:ietf:params:xml:ns:pidf:data-model"
PIDF_TYPE = "application/pidf+xml"
# RFC 5139 §3.1 civic address elements we match and write.
CIVIC_FIELDS = ("country", "A1", "A2", "A3", "A4", "A5", "A6", "PC", "RD", "HNO", "NAM")
_MAX_PIDF_BYTES = 16384


class LocationError(ValueError):
    """A location cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Location:
    lat: float | None = None
    lon: float | None = None
    civic: tuple[tuple[str, str], ...] = ()
    pidf: str = ""  # the document as received (or as we built it)

    def civic_value(self, name: str) -> str | None:
        for k, v in self.civic:
            if k.lower() == name.lower():
                return v
        return None

    def describe(self) -> str:
        parts = []
        if self.lat is not None and self.lon is not None:
            parts.append(f"{self.lat:.5f},{self.lon:.5f}")
        if self.civic:
            parts.append(" ".join(f"{k}={v}" for k, v in self.civic))
        return "; ".join(parts) or "no position"


@dataclass(frozen=True, slots=True)
class Region:
    """A named area: matched by civic fields, a lat/lon box, or source networks."""

    name: str
    civic: tuple[tuple[str, str], ...] = ()  # every given field must match
    box: tuple[float, float, float, float] | None = None  # lat_min, lon_min, lat_max, lon_max
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    point: tuple[float, float] | None = None  # where to say a network-mapped caller is
    psap: str | None = None  # the emergency destination for callers here
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def matches(self, loc: Location) -> bool:
        if self.civic and loc.civic:
            ok = all((loc.civic_value(k) or "").casefold() == v.casefold() for k, v in self.civic)
            if ok:
                return True
        if self.box is not None and loc.lat is not None and loc.lon is not None:
            lat_min, lon_min, lat_max, lon_max = self.box
            return lat_min <= loc.lat <= lat_max and lon_min <= loc.lon <= lon_max
        return False

    def contains_address(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    def location(self) -> Location:
        """What we can say about a caller known only to be in this region."""
        lat, lon = self.point if self.point is not None else (None, None)
        return Location(lat, lon, self.civic)


def find_region(regions: Sequence[Region], loc: Location | None) -> Region | None:
    """The first region matching `loc`."""
    if loc is None:
        return None
    return next((r for r in regions if r.matches(loc)), None)


def region_by_network(regions: Sequence[Region], host: str) -> Region | None:
    """The first region whose networks hold the address `host`."""
    return next((r for r in regions if r.contains_address(host)), None)


# -- PIDF-LO -----------------------------------------------------------------------------------
def parse_pidf(body: bytes | str) -> Location:
    """The position in a PIDF-LO document (RFC 4119 §2.2.1; RFC 5491 §3 for the
    `dm:device` form). The first `location-info` found is used."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    if len(data) > _MAX_PIDF_BYTES:
        raise LocationError(f"PIDF-LO larger than {_MAX_PIDF_BYTES} bytes")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise LocationError("PIDF-LO with a document type declaration is refused")
    try:
        root = ET.fromstring(data)  # noqa: S314 (no DTD, so no entity expansion)
    except ET.ParseError as exc:
        raise LocationError(f"PIDF-LO is not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an XML declaration's encoding expat lacks
        raise LocationError(f"PIDF-LO in an unsupported encoding: {exc}") from None
    if root.tag != f"{{{NS_PIDF}}}presence":
        raise LocationError("PIDF-LO root element must be pidf presence")
    info = next(root.iter(f"{{{NS_GEOPRIV}}}location-info"), None)
    if info is None:
        raise LocationError("PIDF-LO has no geopriv location-info")
    lat = lon = None
    pos = next(info.iter(f"{{{NS_GML}}}pos"), None)
    if pos is not None and pos.text:
        parts = pos.text.split()
        try:
            lat, lon = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise LocationError(f"gml:pos {pos.text!r} is not 'latitude longitude'") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise LocationError(f"gml:pos {pos.text!r} is outside the globe")
    civic: list[tuple[str, str]] = []
    addr = next(info.iter(f"{{{NS_CIVIC}}}civicAddress"), None)
    if addr is not None:
        for child in addr:
            name = child.tag.rpartition("}")[2]
            if child.text and child.text.strip():
                civic.append((name, child.text.strip()))
    if lat is None and not civic:
        raise LocationError("PIDF-LO location-info holds neither a gml:pos nor a civicAddress")
    return Location(lat, lon, tuple(civic), data.decode("utf-8", "replace"))


def build_pidf(entity: str, loc: Location, *, method: str = "Manual", device: str = "d1") -> str:
    """A PIDF-LO document (RFC 5491 §3 `dm:device` form) for `loc`."""
    info: list[str] = []
    if loc.lat is not None and loc.lon is not None:
        info.append(
            '<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
            f"<gml:pos>{loc.lat:.6f} {loc.lon:.6f}</gml:pos></gml:Point>"
        )
    if loc.civic:
        fields = "".join(f"<ca:{k}>{escape(v)}</ca:{k}>" for k, v in _civic_in_order(loc.civic))
        info.append(f"<ca:civicAddress>{fields}</ca:civicAddress>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="{NS_PIDF}" xmlns:gp="{NS_GEOPRIV}" xmlns:gml="{NS_GML}"'
        f' xmlns:ca="{NS_CIVIC}" xmlns:dm="{NS_DM}" entity="{escape(entity, {chr(34): "&quot;"})}">'
        f'<dm:device id="{escape(device)}"><gp:geopriv><gp:location-info>{"".join(info)}'
        "</gp:location-info><gp:usage-rules/>"
        f"<gp:method>{escape(method)}</gp:method></gp:geopriv></dm:device></presence>\n"
    )


def _civic_in_order(civic: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    known = {k.lower(): k for k in CIVIC_FIELDS}
    items = [(known.get(k.lower(), k), v) for k, v in civic]
    return sorted(items, key=lambda kv: CIVIC_FIELDS.index(kv[0]) if kv[0] in CIVIC_FIELDS else 99)
