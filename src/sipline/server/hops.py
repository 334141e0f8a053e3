"""Next hops of registered devices, shared by the proxy, messaging and the backend."""

from __future__ import annotations

from sipline.core.routing import is_ip_literal
from sipline.storage.base import Binding
from sipline.transport import Target

__all__ = ["received_target"]


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
