"""The transaction-stateful proxy (RFC 3261 §16) and the redirect server (§8.3).

The §16 rules (forking, best response, CANCEL, Timer C) are the sans-I/O
`ProxyContext` in `sipline.core.proxy`; this package looks things up and carries out
what it asks. `handler` is the entry point (`Proxy`: validation, authentication,
the relay gate); `targets` finds where a request goes (§16.5); `driver` runs one
request's context; `forward` builds each branch's request; `local` knows our own
names and the Record-Route; `stateless` forwards 2xx ACKs and stray 2xx responses;
`abandoned` ends the late answer of a branch given up. Imported by
`sipline.server.sip_server` only.

Imported by the server's wiring (`sipline.server.sip_server`) only.
"""

from sipline.server.proxy.backend import ProxyBackend, ProxyConfig, RedirectPolicy
from sipline.server.proxy.handler import Proxy

__all__ = ["Proxy", "ProxyBackend", "ProxyConfig", "RedirectPolicy"]
