"""Next hops of registered devices, shared by the proxy, messaging and the backend."""

from __future__ import annotations

from sipline.core.routing import is_ip_literal
from sipline.core.uri import SipUri, Uri
from sipline.storage.base import Binding
from sipline.transport import Target

__all__ = ["literal_target", "received_target"]

_PORTS = {"TLS": 5061, "WS": 80, "WSS": 443}  # §19.1.2, RFC 7118 §5.2; else 5060


def received_target(binding: Binding | None) -> Target | None:
    """The NAT-aware next hop of a binding: where its REGISTER came from."""
    if binding is None or not binding.received:
        return None
    transport, _, rest = binding.received.partition(":")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not is_ip_literal(host):
        return None
    return Target(transport.upper(), host, int(port))


def literal_target(uri: Uri) -> Target | None:
    """RFC 3263 §4.2 for a numeric host (or maddr): the target, with no lookup; None
    when a name has to be resolved (or the URI is not a SIP URI)."""
    if not isinstance(uri, SipUri):
        return None
    host = uri.maddr or uri.host
    if not is_ip_literal(host):
        return None
    transport = uri.transport or ("TLS" if uri.secure else "UDP")
    if transport == "WS" and uri.secure:
        transport = "WSS"  # RFC 7118 §5.2: a sips URI with transport=ws
    return Target(transport, host, uri.port or _PORTS.get(transport, 5060))
