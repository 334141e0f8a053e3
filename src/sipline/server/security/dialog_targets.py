"""The remote targets of dialogs this proxy helped set up (RFC 3261 §12.1.1, §12.1.2:
the Contact of the INVITE and of its 2xx).

A user agent that ignores the route set (pyVoIP 1.6 sends its BYE straight to the
callee's Contact, with no Route) names the far end's device in its Request-URI. That
target did not come from the request: we learnt it when the dialog was made, so the
relay gate lets an in-dialog request reach it, loopback or internal address or not.

Bounded: the oldest targets are forgotten past `capacity` or after `ttl_s`.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["DialogTargets"]


class DialogTargets:
    def __init__(self, *, capacity: int = 50_000, ttl_s: float = 12 * 3600.0) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.capacity = capacity
        self.ttl_s = ttl_s

    def learn(self, contact_uri: str, *, now: float) -> None:
        key = contact_uri.strip()
        if not key:
            return
        self._seen[key] = now + self.ttl_s
        self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def knows(self, uri_text: str, *, now: float) -> bool:
        until = self._seen.get(uri_text.strip())
        if until is None:
            return False
        if until < now:
            del self._seen[uri_text.strip()]
            return False
        return True

    def __len__(self) -> int:
        return len(self._seen)
