"""Pager-mode messages (RFC 3428) kept for users who are offline, and their delivery.

A MESSAGE for a known user with no registered device is stored, and answered 202
Accepted only once the store has committed it (RFC 3428 §7: 202 says "accepted for
later delivery"). When the user registers, stored messages go to every registered
contact, oldest first, with every header that describes its body (RFC 3428 §7:
the body is end to end, so Content-Encoding, Content-Disposition, ... go with it).
A message is removed once a contact answers 2xx. A transient failure (408, 480,
503, a transport error, `sipline.core.retry`) stops the run, so order is kept, and
is retried later with a doubling delay; a permanent one (415, 488, 606, ...) from
every contact ends that message: it is kept as failed, for its sender to see
(`sipline messages`), and delivery goes on with the next. A delivery lease in the store keeps two server processes sharing it from
delivering the same messages. The waiting count is announced with the
message-summary event (RFC 3842) by `MessageSummaryPackage`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from sipline.content.subscription import SubscriptionInput
from sipline.content.summary import CONTENT_TYPE as SUMMARY_TYPE
from sipline.content.summary import MessageSummary
from sipline.core.message import Request, Response
from sipline.core.retry import is_transient
from sipline.runtime.endpoint import Endpoint, ServerTransaction
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Binding, StoreError
from sipline.storage.im import NewMessage, StoredMessage
from sipline.transport import Target

__all__ = ["MessageSummaryPackage", "MessagingService", "MessagingSettings"]

log = logging.getLogger("sipline.messaging")

# End-to-end headers a stored message keeps for its recipient: those that describe
# the body (RFC 3261 §20.11-20.15, RFC 3428 §7: the body passes end to end), and the
# ones the sender wrote for the recipient (§20.17 Date, §20.26 Priority, §20.36
# Subject, §20.22 In-Reply-To, §20.31 Reply-To, §20.25 Organization, RFC 3428 §9:
# Expires is how long the content is valid). Content-Type is kept in its own field.
KEPT_HEADERS = (
    "content-encoding",
    "content-disposition",
    "content-language",
    "content-transfer-encoding",
    "content-id",
    "mime-version",
    "subject",
    "date",
    "priority",
    "in-reply-to",
    "reply-to",
    "organization",
    "expires",
)
MAX_RETRY_S = 3600.0


@dataclass(frozen=True, slots=True)
class MessagingSettings:
    max_body_bytes: int = 8192
    store_offline: bool = True
    expiry_s: float = 604800.0
    max_stored_per_user: int = 1000
    retry_s: float = 30.0
    lease_s: float = 60.0


# Where a stored message for a binding goes; it may put a Route on the request (the
# owner node of the binding's flow, server/hops.py).
BindingHop = Callable[[Binding, Request], Awaitable[Target | None]]


class MessagingService:
    def __init__(
        self,
        endpoint: Endpoint,
        store: AsyncStore,
        *,
        settings: MessagingSettings,
        owner: str,
        bindings: Callable[[str], list[Binding]],
        hop: BindingHop,
        on_count_changed: Callable[[str], Awaitable[None]],
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.settings = settings
        self.owner = owner
        self._bindings = bindings
        self._hop = hop
        self._count_changed = on_count_changed
        self._running: dict[str, asyncio.Task[None]] = {}
        self.delivered = 0

    # -- storing --------------------------------------------------------------------------------
    async def keep(self, st: ServerTransaction, aor: str) -> None:
        """Store a MESSAGE for offline `aor`; 202 once committed (486 when full)."""
        request = st.request
        store = self.store.store
        now = self.endpoint.wall()
        waiting = await self.store.call(lambda: store.count_messages(aor, now=now))
        if waiting >= self.settings.max_stored_per_user:
            st.respond(486, "Busy Here (the user's message store is full)")
            return
        kept = tuple(
            (name, value) for name in KEPT_HEADERS for value in request.headers.get_all(name)
        )
        message = NewMessage(
            aor=aor,
            sender=request.headers.get("from") or "",
            recipient=request.headers.get("to") or "",
            call_id=request.call_id,
            # The whole value: parameters (charset, boundary) belong to the body too.
            content_type=request.headers.get("content-type") or "text/plain",
            body=request.body,
            received_at=now,
            expires_at=now + self.settings.expiry_s,
            headers=kept,
        )
        try:
            await self.store.write(store.add_message, message)
        except StoreError as exc:
            log.warning("cannot store a message for %s: %s", aor, exc)
            st.respond(500, "Server Internal Error (cannot store the message)")
            return
        st.respond(202, "Accepted (stored for delivery when the user is online)")
        await self._count_changed(aor)

    # -- delivering -----------------------------------------------------------------------------
    def deliver_soon(self, aor: str) -> None:
        """Start delivering `aor`'s stored messages unless a run is under way."""
        task = self._running.get(aor)
        if task is not None and not task.done():
            return
        self._running[aor] = self.endpoint.spawn(self._deliver(aor, force=True))

    async def settled(self) -> None:
        """Return once no delivery run is under way (those started meanwhile too)."""
        while running := [t for t in self._running.values() if not t.done()]:
            await asyncio.wait(running)

    async def _deliver(self, aor: str, *, force: bool) -> None:
        store = self.store.store
        s = self.settings
        try:
            now = self.endpoint.wall()
            # Most REGISTERs find nothing stored: a read (no commit) answers that before
            # the lease is claimed in a write transaction.
            waiting = await self.store.call(functools.partial(store.count_messages, aor, now=now))
            if not waiting:
                return
            claimed = await self.store.write(
                lambda: store.claim_delivery(aor, self.owner, now=now, lease_s=s.lease_s)
            )
            if not claimed:
                return
            try:
                sent = await self._deliver_run(aor, force=force)
            finally:
                await self.store.write(store.release_delivery, aor, self.owner)
            if sent:
                await self._count_changed(aor)
        except StoreError as exc:
            log.warning("delivery to %s interrupted: %s", aor, exc)
        finally:
            if self._running.get(aor) is asyncio.current_task():
                del self._running[aor]

    async def _deliver_run(self, aor: str, *, force: bool) -> int:
        store = self.store.store
        sent = 0
        while True:
            bindings = self._bindings(aor)
            now = self.endpoint.wall()
            batch = await self.store.call(
                functools.partial(store.pending_messages, aor, now=now, limit=20)
            )
            if not bindings or not batch:
                return sent
            for message in batch:
                if not force and message.next_attempt_at > now:
                    return sent
                delivered, refusal = await self._send(message, bindings)
                if delivered:
                    await self.store.write(store.remove_message, message.id)
                    sent += 1
                    self.delivered += 1
                    continue
                if refusal is not None:
                    # Refused for good: sending it again gets the same answer, so it
                    # ends here and the next message goes on.
                    log.warning(
                        "stored message %d for %s refused: %s (kept as failed)",
                        message.id,
                        aor,
                        refusal,
                    )
                    await self.store.write(
                        functools.partial(store.fail_message, message.id, refusal, now=now)
                    )
                    sent += 1  # no longer waiting: the count changed
                    continue
                delay = min(self.settings.retry_s * 2**message.attempts, MAX_RETRY_S)
                await self.store.write(store.defer_message, message.id, now + delay)
                return sent  # keep the order: later ones wait for this one
            force = False

    async def _send(
        self, message: StoredMessage, bindings: list[Binding]
    ) -> tuple[bool, str | None]:
        """Fork the message to every contact: (delivered, refusal). Delivered once one
        answers 2xx; a refusal ("415 Unsupported Media Type") when every contact
        answered a permanent failure; neither when a failure may pass (retry)."""
        attempts = []
        for b in bindings:
            request = self._request(message, b)
            hop = await self._hop(b, request)
            if hop is not None:
                attempts.append(self.endpoint.request(request, hop))
        results = await asyncio.gather(*attempts, return_exceptions=True)
        answers = [r for r in results if isinstance(r, Response)]
        if any(200 <= r.status < 300 for r in answers):
            return True, None
        if (
            not answers
            or len(answers) < len(bindings)  # a contact unreachable now may take it later
            or any(is_transient(r.status) for r in answers)
        ):
            return False, None
        worst = min(answers, key=lambda r: r.status)
        return False, f"{worst.status} {worst.reason}".strip()

    def _request(self, message: StoredMessage, binding: Binding) -> Request:
        request = Request("MESSAGE", binding.contact)
        h = request.headers
        h.add("Max-Forwards", "70")
        for route in binding.path:  # RFC 3327: the Path is the route to the contact
            h.add("Route", route)
        h.add("From", message.sender)
        h.add("To", message.recipient)
        h.add("Call-ID", message.call_id)
        h.add("CSeq", f"{message.attempts + 1} MESSAGE")
        names = {n.lower() for n, _ in message.headers}
        if "date" not in names:
            # §20.17: when it was sent, since it arrives late.
            when = datetime.fromtimestamp(message.received_at, UTC)
            h.add("Date", format_datetime(when, usegmt=True))
        for name, value in message.headers:
            h.add(name, value)
        request.set_body(message.body, message.content_type)
        return request

    async def tick(self) -> None:
        """Drop expired messages; retry deliveries that are due (for users who
        registered with another process too)."""
        store = self.store.store
        now = self.endpoint.wall()
        expired = await self.store.write(store.purge_expired_messages, now)
        for aor in sorted({m.aor for m in expired}):
            log.info("stored messages for %s expired undelivered", aor)
            await self._count_changed(aor)
        for aor in await self.store.call(lambda: store.aors_with_messages(now=now)):
            if self._bindings(aor) and aor not in self._running:
                self._running[aor] = self.endpoint.spawn(self._deliver(aor, force=False))


class MessageSummaryPackage:
    """`EventPackage` for message-summary (RFC 3842): a user sees their own count."""

    event = "message-summary"
    content_type = SUMMARY_TYPE

    def __init__(self, store: AsyncStore, *, wall: Callable[[], float]) -> None:
        self.store = store
        self._wall = wall

    async def authorize(self, resource: str, watcher: str) -> SubscriptionInput:
        return SubscriptionInput.AUTHORIZED if watcher == resource else SubscriptionInput.REFUSED

    async def state(self, resource: str) -> bytes:
        store, now = self.store.store, self._wall()
        count = await self.store.call(lambda: store.count_messages(resource, now=now))
        voice = await self.store.call(lambda: store.count_voicemail(resource))
        return MessageSummary.of_mailbox(f"sip:{resource}", (count, 0), voice).serialize()

    def fingerprint(self, resource: str) -> object:
        return None  # changes only through the store (its marks)
