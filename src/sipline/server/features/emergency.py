"""Emergency calls: recognised before anything can refuse them, sent to the PSAP for
the caller's location, with that location and a callback identity attached.

RFC 5031 §4.2 names emergency services `urn:service:sos` (and `urn:service:sos.*`);
dialled numbers such as 112 or 911 come as `sip:112@domain` or `tel:112`. The
caller's location is, in order: what the INVITE itself carries (a Geolocation
header, RFC 6442 §4.1, pointing at a PIDF-LO body part by Content-ID), the location
the caller's device registered with, the caller's region by source network. The
PSAPs are tried in turn: the one configured for that region, then the default, then
the fallbacks. One that sends no response at all within `hop_timeout_s` (not even
100 Trying) is given up at once, as Timer B would after 32 s (RFC 3261 §17.1.1.2),
and the next is tried; when none is left the caller gets a final response at once.
Each branch carries:

- `Geolocation: <cid:...>` and the PIDF-LO as a `multipart/mixed` body part
  (RFC 6442 §3.1), unless the caller sent them already;
- `P-Asserted-Identity` (RFC 3325 §9.1), the address to call back, only when the
  caller authenticated as that user: an emergency call is never refused for want of
  credentials, so an unverified caller's call goes on without it (the absence says
  the identity is not asserted, RFC 3325 §9.1; any P-Asserted-Identity the caller
  sent is removed by the proxy, RFC 3325 §5);
- `Priority: emergency` (RFC 3261 §20.26).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import AbsoluteUri, SipUri, TelUri, Uri
from sipline.server.features.decisions import (
    Decision,
    Exhausted,
    Outcome,
    Reject,
    RingStep,
    RingTarget,
)
from sipline.server.features.forwarding import Device
from sipline.server.features.location import (
    PIDF_TYPE,
    Location,
    LocationError,
    Region,
    build_pidf,
    find_region,
    parse_pidf,
    region_by_network,
)

__all__ = [
    "DEFAULT_HOP_TIMEOUT_S",
    "DEFAULT_NUMBERS",
    "CallerLocation",
    "EmergencySession",
    "EmergencySettings",
    "caller_location",
    "is_emergency_uri",
    "location_from_request",
    "split_multipart",
]

DEFAULT_NUMBERS = ("112", "911", "urn:service:sos")


DEFAULT_HOP_TIMEOUT_S = 4.0


@dataclass(frozen=True, slots=True)
class EmergencySettings:
    numbers: tuple[str, ...] = DEFAULT_NUMBERS
    psap: str | None = None  # where calls go when no region has its own PSAP
    regions: tuple[Region, ...] = ()
    fallbacks: tuple[str, ...] = ()  # PSAPs tried in turn after those
    # A PSAP that sends no response at all within this is given up for the next one.
    hop_timeout_s: float = DEFAULT_HOP_TIMEOUT_S


def is_emergency_uri(uri: Uri, numbers: Sequence[str]) -> bool:
    urns = [n.lower() for n in numbers if n.lower().startswith("urn:")]
    digits = {n for n in numbers if not n.lower().startswith("urn:")}
    if isinstance(uri, AbsoluteUri):
        text = str(uri).lower()
        # RFC 5031 §4.2: sub-services (urn:service:sos.fire) are emergency calls too.
        return any(text == u or text.startswith(u + ".") for u in urns)
    if isinstance(uri, TelUri):
        return uri.digits in digits
    if isinstance(uri, SipUri):
        return uri.user is not None and uri.user in digits
    return False


@dataclass(frozen=True, slots=True)
class CallerLocation:
    location: Location | None
    region: Region | None
    how: str  # for logs and explanations
    by_value: bool = False  # the request already carries the PIDF-LO


def split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body (RFC 2046 §5.1.1) as (lower-case headers, body)."""
    boundary = None
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return []
    delimiter = b"--" + boundary.encode("ascii", "replace")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = {}
        for line in head.split(b"\r\n"):
            name, colon, value = line.decode("utf-8", "replace").partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content.removesuffix(b"\r\n")))
    return parts


def location_from_request(request: Request) -> Location | None:
    """RFC 6442 §4.1: a `cid:` Geolocation names the body part holding the PIDF-LO."""
    geo = request.headers.get("geolocation")
    ctype = request.headers.get("content-type") or ""
    if not geo:
        return None
    cid = None
    for item in geo.split(","):
        v = item.strip()
        if v.startswith("<cid:"):
            cid = v[5 : v.find(">")]
            break
    if cid is None:
        return None  # by reference: we cannot dereference it here
    if ctype.split(";")[0].strip().lower() == PIDF_TYPE:
        candidates = [request.body]
    else:
        candidates = [
            content
            for headers, content in split_multipart(ctype, request.body)
            if headers.get("content-id", "").strip("<>") == cid
        ]
    for content in candidates:
        try:
            return parse_pidf(content)
        except LocationError:
            return None
    return None


def caller_location(
    request: Request, source_host: str, devices: Sequence[Device], settings: EmergencySettings
) -> CallerLocation:
    regions = settings.regions
    try:
        sent = location_from_request(request)
    except RemoteProtocolError:
        sent = None
    if sent is not None:
        return CallerLocation(
            sent, find_region(regions, sent), "the Geolocation the call carries", True
        )
    device = _calling_device(devices, source_host)
    if device is not None:
        loc = None
        if device.pidf:
            try:
                loc = parse_pidf(device.pidf)
            except LocationError:
                loc = None
        region = next((r for r in regions if r.name == device.region), None)
        if region is None:
            region = find_region(regions, loc)
        if loc is None and region is not None:
            loc = region.location()
        if loc is not None or region is not None:
            return CallerLocation(loc, region, f"the location registered by {device.contact}")
    region = region_by_network(regions, source_host)
    if region is not None:
        return CallerLocation(region.location(), region, f"the network of {source_host}")
    return CallerLocation(None, None, "unknown")


def _calling_device(devices: Sequence[Device], source_host: str) -> Device | None:
    """The caller's registered device the call came from, else their latest one."""
    host = source_host.strip("[]").lower()
    for d in devices:
        b = d.binding
        received = (
            b.received.rpartition(":")[0].partition(":")[2].strip("[]") if b and b.received else ""
        )
        contact_host = d.contact.partition("@")[2].split(";")[0].rsplit(":", 1)[0].strip("[]")
        if host and host in (received.lower(), contact_host.lower()) and (d.pidf or d.region):
            return d
    located = [d for d in devices if d.pidf or d.region]
    return max(located, key=lambda d: d.updated_at) if located else None


@dataclass(slots=True)
class EmergencySession:
    """The `RouteSession` of an emergency call: the PSAP(s), no user rule applies."""

    request: Request
    found: CallerLocation
    callback: str  # a SIP URI
    settings: EmergencySettings
    host: str  # our host, for the Content-ID
    # Whether the caller authenticated as `callback`: only then is it asserted.
    verified: bool = True
    psaps: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        regional = self.found.region.psap if self.found.region is not None else None
        s = self.settings
        self.psaps = [p for p in dict.fromkeys((regional, s.psap, *s.fallbacks)) if p]

    def start(self) -> Decision:
        if not self.psaps:
            return Reject(503, "Service Unavailable (no emergency destination configured)")
        return self._ring()

    def step_failed(self, outcome: Outcome, best: Response | None) -> Decision:
        if outcome is Outcome.DECLINED or not self.psaps:
            return Exhausted(503, "Service Unavailable (emergency destination unreachable)")
        return self._ring()

    def _ring(self) -> Decision:
        psap = self.psaps.pop(0)
        headers: list[tuple[str, str]] = [("Priority", "emergency")]
        if self.verified:
            # RFC 3325 §9.1: asserted only for a caller who authenticated.
            headers.insert(0, ("P-Asserted-Identity", f"<{self.callback}>"))
        body = None
        loc = self.found.location
        if loc is not None and not self.found.by_value:
            token = hashlib.blake2b(self.request.call_id.encode(), digest_size=8).hexdigest()
            cid = f"loc-{token}@{self.host}"
            pidf = loc.pidf or build_pidf(self.callback.removeprefix("sip:"), loc)
            body, ctype = _with_location(self.request, pidf, cid, token)
            headers += [
                ("Geolocation", f"<cid:{cid}>"),
                ("Geolocation-Routing", "yes"),  # RFC 6442 §4.2
                ("Content-Type", ctype),
            ]
        region = self.found.region.name if self.found.region is not None else "no region"
        return RingStep(
            (RingTarget(psap, label="PSAP"),),
            None,
            tuple(headers),
            body,
            label=f"emergency: {region} ({self.found.how})",
            hop_timeout_s=self.settings.hop_timeout_s,
        )


def _with_location(request: Request, pidf: str, cid: str, token: str) -> tuple[bytes, str]:
    """RFC 6442 §3.1: the PIDF-LO beside the request's own body in multipart/mixed."""
    boundary = f"sipline-{token}"
    parts = []
    if request.body:
        ctype = request.headers.get("content-type") or "application/sdp"
        parts.append(f"Content-Type: {ctype}\r\n\r\n".encode() + request.body)
    parts.append(
        f"Content-Type: {PIDF_TYPE}\r\nContent-ID: <{cid}>\r\n\r\n".encode() + pidf.encode()
    )
    delimiter = f"--{boundary}".encode()
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts) + delimiter + b"--\r\n"
    return body, f"multipart/mixed;boundary={boundary}"
