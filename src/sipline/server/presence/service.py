"""The presence event package (RFC 3856) and the PUBLISH handler (RFC 3903).

A user's presence is what their devices published (composed when there are
several), or, when they published nothing, what their registrations say:
registered = open, none = closed. A device that lost its entity tag (a restarted
client) and publishes afresh replaces its earlier publication: a tuple's id names
it in the presentity's document (RFC 3863 §4.1.1), so a newer publication of the
same tuple (same id and contact) supersedes the older instead of being composed
with it. Otherwise:
registered = open, none = closed. Watchers are authorised per user: the user's
rules (allow, block) first, then the configured default policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sipline.content.pidf import (
    CONTENT_TYPE,
    MAX_BYTES,
    PidfError,
    PresenceDocument,
    PresenceTuple,
    compose,
    parse_pidf,
)
from sipline.content.subscription import SubscriptionInput, grant_expires
from sipline.core.clock import Entropy, token_from_bytes
from sipline.runtime.endpoint import ServerTransaction
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Binding
from sipline.storage.im import Publication

__all__ = ["PresencePackage", "decide"]

log = logging.getLogger("sipline.presence")

EVENT = "presence"


def decide(policy: str, resource: str, watcher: str, rule: str | None) -> SubscriptionInput:
    """Whether `watcher` may see `resource`: the user's own rule, else the policy."""
    if watcher == resource or rule == "allow":
        return SubscriptionInput.AUTHORIZED
    if rule == "block":
        return SubscriptionInput.REFUSED
    if policy == "allow":
        return SubscriptionInput.AUTHORIZED
    if policy == "deny":
        return SubscriptionInput.REFUSED
    if policy == "same-domain" and (
        watcher.rpartition("@")[2].lower() == resource.rpartition("@")[2].lower()
    ):
        return SubscriptionInput.AUTHORIZED
    return SubscriptionInput.PENDED  # "confirm", or another domain under "same-domain"


class PresencePackage:
    """`EventPackage` for presence, and the presence agent's PUBLISH handling."""

    event = EVENT
    content_type = CONTENT_TYPE

    def __init__(
        self,
        store: AsyncStore,
        *,
        policy: str,
        bindings: Callable[[str], list[Binding]],
        wall: Callable[[], float],
        entropy: Entropy,
        min_expires_s: int,
        max_expires_s: int,
        default_expires_s: int,
    ) -> None:
        self.store = store
        self.policy = policy
        self._bindings = bindings
        self._wall = wall
        self._entropy = entropy
        self._expiry = (min_expires_s, max_expires_s, default_expires_s)

    async def authorize(self, resource: str, watcher: str) -> SubscriptionInput:
        rules = dict(await self.store.call(self.store.store.watcher_rules, resource))
        return decide(self.policy, resource, watcher, rules.get(watcher))

    async def _publications(self, resource: str) -> list[Publication]:
        store, now = self.store.store, self._wall()
        return await self.store.call(lambda: store.publications(resource, EVENT, now=now))

    async def document(self, resource: str) -> PresenceDocument:
        entity = f"sip:{resource}"
        pubs = await self._publications(resource)
        docs = []
        for p in pubs:
            try:
                docs.append(parse_pidf(p.document))
            except PidfError:
                continue  # checked when published; a damaged row is skipped
        if docs:
            return compose(entity, docs)
        basic = "open" if self._bindings(resource) else "closed"
        return PresenceDocument(entity, (PresenceTuple("registration", basic, entity),))

    async def state(self, resource: str) -> bytes:
        pubs = await self._publications(resource)
        if len(pubs) == 1:
            return pubs[0].document  # one device: its document exactly as published
        return (await self.document(resource)).serialize()

    def fingerprint(self, resource: str) -> object:
        return bool(self._bindings(resource))

    # -- PUBLISH (RFC 3903 §6) ---------------------------------------------------------------
    async def publish(self, st: ServerTransaction, *, aor: str) -> bool:
        """Handle a PUBLISH for `aor` (authenticated as that user by the caller);
        True when the published state changed."""
        request = st.request
        event = (request.headers.get("event") or "").partition(";")[0].strip().lower()
        if event != EVENT:
            st.respond(489, extra=[("Allow-Events", EVENT)])  # step 2
            return False
        store = self.store.store
        now = self._wall()
        match = (request.headers.get("sip-if-match") or "").strip() or None
        old: Publication | None = None
        if match is not None:
            old = await self.store.call(store.get_publication, aor, EVENT, match)
            if old is None or old.expires_at <= now:
                st.respond(412)  # step 3: Conditional Request Failed
                return False
        low, high, default = self._expiry
        granted = grant_expires(request.expires, default_s=default, min_s=low, max_s=high)
        if granted is None:
            st.respond(423, extra=[("Min-Expires", str(low))])  # step 5
            return False
        body = request.body
        if granted == 0:
            if old is None:
                st.respond(400, "Bad Request (removal without SIP-If-Match)")
                return False
            await self.store.write(store.remove_publication, aor, EVENT, old.etag)
            st.respond(200, extra=[("SIP-ETag", old.etag), ("Expires", "0")])
            return True
        if not body:
            if old is None:
                st.respond(400, "Bad Request (initial PUBLISH without a body)")  # step 4
                return False
            document, ctype = old.document, old.content_type  # a refresh
        else:
            ctype = (request.content_type or "").partition(";")[0].strip().lower()
            if ctype != CONTENT_TYPE:
                st.respond(415, extra=[("Accept", CONTENT_TYPE)])  # step 4
                return False
            if len(body) > MAX_BYTES:
                st.respond(413)
                return False
            try:
                parse_pidf(body)
            except PidfError as exc:
                st.respond(400, f"Bad Request ({exc})")
                return False
            document = body
        etag = token_from_bytes(self._entropy.random_bytes(12))
        publication = Publication(aor, etag, EVENT, ctype, document, now + granted, now)
        superseded: list[Publication] = []
        if old is None:
            superseded = _same_tuples(document, await self._publications(aor))
            old = superseded.pop() if superseded else None
        replaces = old.etag if old else None
        replaced = await self.store.write(
            lambda: store.put_publication(publication, replaces=replaces)
        )
        if not replaced:
            st.respond(412)  # removed meanwhile (another process, or it expired)
            return False
        for gone in superseded:
            await self.store.write(store.remove_publication, aor, EVENT, gone.etag)
        st.respond(200, extra=[("SIP-ETag", etag), ("Expires", str(granted))])  # step 8
        return old is None or old.document != document or bool(superseded)


def _tuple_keys(document: bytes) -> set[tuple[str, str | None]]:
    try:
        return {(t.id, t.contact) for t in parse_pidf(document).tuples}
    except PidfError:
        return set()


def _same_tuples(document: bytes, publications: list[Publication]) -> list[Publication]:
    """The publications (oldest first) that publish the same tuples as `document`."""
    keys = _tuple_keys(document)
    if not keys:
        return []
    return [p for p in publications if _tuple_keys(p.document) == keys]
