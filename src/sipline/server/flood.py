"""Flood control as `sipline serve` sets it up: the guard's settings from the
configuration, and the one exemption only the application can judge (README "Running
on the Internet")."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, parse_message
from sipline.core.uri import SipUri, parse_uri
from sipline.runtime.flood import FloodConfig
from sipline.server.backend import ServerBackend
from sipline.server.features.emergency import is_emergency_uri
from sipline.server.security.relay import TrustedPeer
from sipline.server.security.sections import SecuritySection

__all__ = ["emergency_spare", "flood_config"]


def flood_config(security: SecuritySection, trusted: Sequence[TrustedPeer]) -> FloodConfig:
    return FloodConfig(
        enabled=security.flood_control,
        max_requests=security.flood_requests,
        window_s=security.flood_window_s,
        ban_s=security.flood_ban_s,
        # Trusted peers (trunks, an SBC) carry many users' traffic from one address.
        exempt=(*security.flood_exempt, *(peer.network for peer in trusted)),
        scanners=security.scanner_user_agents,
    )


def emergency_spare(backend: ServerBackend, numbers: Sequence[str]) -> Callable[[bytes, str], bool]:
    """Whether an INVITE from a banned source is an emergency call from one of our
    registered devices (a binding of its From address at that source address): such a
    call is never dropped (README "Emergency calls"). Runs only for INVITEs from banned
    sources, so parsing here costs nothing on the normal path."""

    def spare(data: bytes, host: str) -> bool:
        try:
            request = parse_message(data)
            if not isinstance(request, Request) or not is_emergency_uri(request.uri, numbers):
                return False
            caller = request.from_.uri
            if not isinstance(caller, SipUri):
                return False
            for binding in backend.bindings(caller.aor):
                if binding.received is not None:
                    if binding.received.split(":", 1)[1].rsplit(":", 1)[0].strip("[]") == host:
                        return True
                    continue
                contact = parse_uri(binding.contact)
                if isinstance(contact, SipUri) and contact.host.strip("[]") == host:
                    return True
        except RemoteProtocolError:
            return False
        return False

    return spare
