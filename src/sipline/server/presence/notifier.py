"""The notifier side of SIP events (RFC 6665) for `sipline serve`.

`Notifier` accepts SUBSCRIBEs for the event packages it is given (presence,
message-summary), keeps each subscription's dialog, state (`Subscription`) and
expiry, and sends NOTIFYs: at once after every SUBSCRIBE (§4.2.1.2), on every change
of the resource's state (paced: at most one per `min_notify_interval_s`), and a
terminated one with its reason when the subscription ends (§4.2.2).

Subscriptions live in the store (`SubscriptionRecord`): a restarted server resumes
them (a NOTIFY with the current state goes to each one it owns), and with several
processes sharing one store, the one holding a subscription notices changes made by
the others by polling the store's change marks (`tick`). An in-dialog SUBSCRIBE that
reaches a process not holding the subscription is served by loading it from the
store and taking it over; the former holder drops it at its next poll. Each process
beats in the store every `BEAT_S`; the subscriptions of one silent for `SILENT_S` (a
node killed, a worker index no longer run) are taken over by the first live process
to look, which resumes them as a restarted owner would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from sipline.content.subscription import (
    Subscription,
    SubscriptionInput,
    SubscriptionState,
    grant_expires,
    next_notify_at,
)
from sipline.core.dialog import Dialog, DialogId
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request
from sipline.core.uri import SipUri, Uri
from sipline.core.views import NameAddr
from sipline.runtime.endpoint import Endpoint, ServerTransaction
from sipline.runtime.timers import Timer
from sipline.server.presence.dialogs import dialog_from_json, dialog_key, dialog_to_json
from sipline.server.presence.pending import PendingLimits, StrangerPending
from sipline.storage.aio import AsyncStore
from sipline.storage.base import StoreError
from sipline.storage.im import SubscriptionRecord
from sipline.transport import Target

__all__ = ["EventPackage", "Notifier", "NotifierSettings", "event_name"]

log = logging.getLogger("sipline.notifier")

BEAT_S = 5.0  # how often a notifier says in the store that it is alive
# A process silent this long is gone: its subscriptions are taken over. Several beats,
# so a live one late by a slow store is not; if it were, it would drop them at its
# next poll (they are no longer its own in the store).
SILENT_S = 20.0


class EventPackage(Protocol):
    """What one event package (RFC 6665 §7) tells the notifier."""

    event: str
    content_type: str

    async def authorize(self, resource: str, watcher: str) -> SubscriptionInput:
        """AUTHORIZED, PENDED or REFUSED for `watcher` watching `resource`."""
        ...

    async def state(self, resource: str) -> bytes:
        """The body describing `resource` now."""
        ...

    def fingerprint(self, resource: str) -> object:
        """A cheap in-memory token that changes when the state may have changed
        without a store write this process would notice (bindings)."""
        ...


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    min_expires_s: int = 60
    max_expires_s: int = 7200
    default_expires_s: int = 3600
    min_notify_interval_s: float = 5.0
    stranger_limits: PendingLimits = field(default_factory=PendingLimits)


@dataclass(slots=True, eq=False)
class _Held:
    id: str
    sub: Subscription
    dialog: Dialog
    transport: str
    last_body: bytes | None = None
    last_sent: float | None = None  # endpoint.now() of the last NOTIFY
    timer: Timer | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    kept: bool = True  # False: answered and notified once, never stored (server/presence/pending)


Hop = Callable[[Uri], Awaitable[Target | None]]


class Notifier:
    def __init__(
        self,
        endpoint: Endpoint,
        store: AsyncStore,
        packages: list[EventPackage],
        *,
        owner: str,
        settings: NotifierSettings,
        contact: Callable[[str], str],
        hop: Hop,
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.packages = {p.event: p for p in packages}
        self.owner = owner
        self.settings = settings
        self._contact = contact
        self._hop = hop
        self._held: dict[str, _Held] = {}
        self._marks: tuple[tuple[int, float], ...] | None = None
        self._prints: dict[tuple[str, str], object] = {}
        self._strangers = StrangerPending(settings.stranger_limits)
        self._next_beat = 0.0
        self.notifies_sent = 0

    @property
    def allow_events(self) -> str:
        return ", ".join(self.packages)

    def subscriptions(self, event: str | None = None) -> list[Subscription]:
        return [h.sub for h in self._held.values() if event is None or h.sub.event == event]

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume the subscriptions this process owned before a restart."""
        await self._beat(self.endpoint.wall())  # alive, before anyone takes ours
        records = await self.store.call(
            functools.partial(self.store.store.list_subscriptions, owner=self.owner)
        )
        for record in records:
            self._hold(record)

    def _hold(self, record: SubscriptionRecord, *, adopted: bool = False) -> None:
        held = self._revive(record)
        if held is None:
            return
        if adopted and held.dialog.local_seq is not None:
            # Its owner may have died between sending a NOTIFY and storing the dialog:
            # skip that CSeq, since the watcher refuses one not above the last (§12.2.2).
            held.dialog.local_seq += 1
        self._held[held.id] = held
        self.endpoint.spawn(self._resume(held))

    async def _beat(self, now: float) -> None:
        """Say we are alive, and take over the subscriptions of processes that fell
        silent; at most every `BEAT_S`."""
        if now < self._next_beat:
            return
        self._next_beat = now + BEAT_S
        store = self.store.store
        await self.store.write(store.beat, self.owner, now)
        adopt = functools.partial(
            store.adopt_subscriptions, self.owner, silent_since=now - SILENT_S, now=now
        )
        for record in await self.store.write(adopt):
            log.info("took over subscription %s of a silent process", record.id)
            self._hold(record, adopted=True)

    async def _resume(self, held: _Held) -> None:
        transition = held.sub.expire(now=self.endpoint.wall())
        if transition is not None:
            await self._notify(held)
            return
        if held.sub.state is SubscriptionState.ACTIVE:
            await self._notify(held)  # the state may have changed while we were down

    def stop(self) -> None:
        for held in self._held.values():
            if held.timer is not None:
                held.timer.cancel()

    def _revive(self, record: SubscriptionRecord) -> _Held | None:
        try:
            dialog = dialog_from_json(record.dialog)
            state = SubscriptionState(record.state)
        except (ValueError, KeyError, TypeError, RemoteProtocolError) as exc:
            log.warning("dropping damaged subscription %s: %s", record.id, exc)
            return None
        if record.event not in self.packages:
            return None
        sub = Subscription(record.event, record.resource, record.watcher, record.expires_at, state)
        target = dialog.remote_target
        transport = (target.transport if isinstance(target, SipUri) else None) or "UDP"
        return _Held(record.id, sub, dialog, transport.upper())

    # -- SUBSCRIBE -------------------------------------------------------------------------------
    def _granted(self, st: ServerTransaction) -> int | None:
        """The granted expiry, or None after answering 423 (RFC 6665 §4.2.1.1)."""
        s = self.settings
        granted = grant_expires(
            st.request.expires,
            default_s=s.default_expires_s,
            min_s=s.min_expires_s,
            max_s=s.max_expires_s,
        )
        if granted is None:
            st.respond(423, extra=[("Min-Expires", str(s.min_expires_s))])
        return granted

    async def subscribe(
        self,
        st: ServerTransaction,
        *,
        resource: str,
        watcher: str,
        stranger: bool = False,
        exists: bool = True,
    ) -> None:
        """A new subscription (no To tag) to `resource` by `watcher`, both already
        checked by the caller (the resource exists, the watcher authenticated), or a
        `stranger`'s, answered alike whether the resource `exists` or not, and kept
        only within the strangers' limits (sipline.server.presence.pending)."""
        request = st.request
        event = event_name(request)
        package = self.packages[event]
        granted = self._granted(st)
        if granted is None:
            return
        decision = await package.authorize(resource, watcher)
        if decision is SubscriptionInput.REFUSED:
            st.respond(403, "Forbidden (the user does not share this with you)")
            return
        contact = self._contact(st.inbound.transport)
        response = st.response(200, extra=[("Expires", str(granted)), ("Contact", contact)])
        dialog = Dialog.as_uas(request, response)
        st.send(response)
        now = self.endpoint.wall()
        sub = Subscription(event, resource, watcher, now + granted)
        held = _Held(dialog_key(dialog.id), sub, dialog, st.inbound.transport)
        if granted == 0:
            # A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, and it is over.
            authorized = decision is SubscriptionInput.AUTHORIZED
            sub.apply(SubscriptionInput.UNSUBSCRIBED)
            await self._notify(held, with_state=authorized)
            return
        sub.apply(decision)
        if stranger:
            source = st.inbound.source.remote[0]
            pending = decision is SubscriptionInput.PENDED
            if not exists or (pending and not self._strangers.admits(source, resource)):
                held.kept = False  # the same answer and NOTIFY, nothing stored
                await self._notify(held)
                return
            if pending:
                self._strangers.add(held.id, source, resource)
        self._held[held.id] = held
        await self._save(held)
        await self._notify(held)

    def holds(self, request_dialog: DialogId | None) -> bool:
        return request_dialog is not None and dialog_key(request_dialog) in self._held

    async def resubscribe(self, st: ServerTransaction) -> None:
        """A SUBSCRIBE inside a subscription's dialog: a refresh, or Expires: 0."""
        request = st.request
        dialog_id = DialogId.of_incoming(request)
        key = dialog_key(dialog_id) if dialog_id is not None else ""
        held = self._held.get(key)
        if held is None and dialog_id is not None:
            record = await self.store.call(self.store.store.get_subscription, key)
            held = self._revive(record) if record is not None else None
            if held is not None:
                self._held[key] = held  # taken over from another process (or a restart)
        if held is None:
            st.respond(481, "Call/Transaction Does Not Exist (no such subscription)")
            return
        if event_name(request) != held.sub.event:
            st.respond(489, extra=[("Allow-Events", held.sub.event)])
            return
        try:
            held.dialog.receive_request(request)
        except RemoteProtocolError as exc:
            st.respond(exc.status, exc.reason)
            return
        granted = self._granted(st)
        if granted is None:
            return
        st.respond(
            200,
            extra=[("Expires", str(granted)), ("Contact", self._contact(st.inbound.transport))],
        )
        transition = held.sub.refresh(granted, now=self.endpoint.wall())
        if transition.state is not SubscriptionState.TERMINATED:
            await self._save(held)
        if transition.notify:
            await self._notify(held)

    # -- changes -------------------------------------------------------------------------------
    async def changed(self, event: str, resource: str) -> None:
        """The state of `resource` may have changed: NOTIFY the watchers whose view
        differs from what they were last told (paced)."""
        package = self.packages.get(event)
        if package is None:
            return
        watching = [
            h
            for h in self._held.values()
            if h.sub.event == event
            and h.sub.resource == resource
            and h.sub.state is SubscriptionState.ACTIVE
        ]
        if not watching:
            return
        try:
            body = await package.state(resource)
        except StoreError as exc:
            log.warning("cannot read the state of %s: %s", resource, exc)
            return
        for held in watching:
            if body != held.last_body:
                held.sub.apply(SubscriptionInput.CHANGED)
                self._schedule(held)

    def _schedule(self, held: _Held) -> None:
        if held.timer is not None:
            return  # a NOTIFY is due already; it will carry the latest state
        now = self.endpoint.now()
        at = next_notify_at(
            held.last_sent, now=now, min_interval_s=self.settings.min_notify_interval_s
        )
        if at <= now:
            self.endpoint.spawn(self._notify(held))
            return

        def fire() -> None:
            held.timer = None
            self.endpoint.spawn(self._notify(held))

        held.timer = self.endpoint.timers.call_at(at, fire)

    async def _authorize_again(self, held: _Held) -> None:
        package = self.packages[held.sub.event]
        decision = await package.authorize(held.sub.resource, held.sub.watcher)
        transition = held.sub.apply(decision)
        if transition.state is SubscriptionState.TERMINATED or transition.notify:
            if transition.state is not SubscriptionState.TERMINATED:
                await self._save(held)
            await self._notify(held)

    async def tick(self) -> None:
        """Poll: expiries, authorisation and state changes made anywhere (another
        process, the CLI, a binding that lapsed)."""
        now = self.endpoint.wall()
        await self._beat(now)
        for held in list(self._held.values()):
            if held.sub.expire(now=now) is not None:
                await self._notify(held)
        marks = await self.store.call(self.store.store.im_marks)
        moved = marks != self._marks
        self._marks = marks
        if moved and self._held:
            mine = {
                r.id
                for r in await self.store.call(
                    functools.partial(self.store.store.list_subscriptions, owner=self.owner)
                )
            }
            for key in [k for k in self._held if k not in mine]:
                held = self._held.pop(key)  # taken over by another process, or removed
                self._strangers.release(key)
                if held.timer is not None:
                    held.timer.cancel()
            for held in list(self._held.values()):
                await self._authorize_again(held)
        groups = {(h.sub.event, h.sub.resource) for h in self._held.values()}
        for event, resource in groups:
            mark = self.packages[event].fingerprint(resource)
            if moved or self._prints.get((event, resource)) != mark:
                self._prints[(event, resource)] = mark
                await self.changed(event, resource)
        for group in [g for g in self._prints if g not in groups]:
            del self._prints[group]

    # -- NOTIFY ---------------------------------------------------------------------------------
    async def _notify(self, held: _Held, *, with_state: bool | None = None) -> None:
        """Send one NOTIFY with the subscription's state (§4.2.2); one at a time per
        subscription, so they arrive in order."""
        async with held.lock:
            sub = held.sub
            package = self.packages[sub.event]
            if with_state is None:
                with_state = sub.state is SubscriptionState.ACTIVE
            body = b""
            if with_state:
                try:
                    body = await package.state(sub.resource)
                except StoreError as exc:
                    log.warning("cannot read the state of %s: %s", sub.resource, exc)
                    return
            try:
                request = held.dialog.create_request(
                    "NOTIFY",
                    contact=NameAddr(self._contact(held.transport).strip("<>")),
                    body=body,
                    content_type=package.content_type if body else None,
                    extra=[
                        ("Event", sub.event),
                        ("Subscription-State", sub.state_header(now=self.endpoint.wall())),
                    ],
                )
            except LocalProtocolError:
                return
            held.last_sent = self.endpoint.now()
            held.last_body = body if with_state else held.last_body
            status = await self._send(held, request)
            self.notifies_sent += 1
        if sub.state is SubscriptionState.TERMINATED:
            await self._forget(held)
        elif status >= 300:
            # §4.2.2: 481, 408 or any failure ends the subscription (no NOTIFY about it).
            sub.apply(SubscriptionInput.NOTIFY_FAILED)
            await self._forget(held)
        else:
            await self._save(held)  # the dialog's CSeq moved on

    async def _send(self, held: _Held, request: Request) -> int:
        target = await self._hop(held.dialog.next_hop())
        if target is None:
            return 503
        try:
            response = await self.endpoint.request(request, target)
        except (OSError, LocalProtocolError) as exc:
            log.info("NOTIFY to %s failed: %s", target, exc)
            return 503
        held.dialog.receive_response(request, response)
        return response.status

    async def _save(self, held: _Held) -> None:
        sub = held.sub
        if sub.state is not SubscriptionState.PENDING:
            self._strangers.release(held.id)  # the user decided: no longer pending
        if not held.kept:
            return
        record = SubscriptionRecord(
            held.id,
            sub.event,
            sub.resource,
            sub.watcher,
            sub.state.value,
            sub.expires_at,
            dialog_to_json(held.dialog),
            self.owner,
            self.endpoint.wall(),
        )
        try:
            await self.store.write(self.store.store.save_subscription, record)
        except StoreError as exc:
            log.warning("cannot store subscription %s: %s", held.id, exc)

    async def _forget(self, held: _Held) -> None:
        self._strangers.release(held.id)
        if not held.kept:
            return
        if held.timer is not None:
            held.timer.cancel()
            held.timer = None
        if self._held.get(held.id) is held:
            del self._held[held.id]
        with contextlib.suppress(StoreError):
            await self.store.write(self.store.store.remove_subscription, held.id)


def event_name(request: Request) -> str:
    """The event package of an Event header, without parameters (RFC 6665 §8.2.1)."""
    value = request.headers.get("event") or ""
    return value.partition(";")[0].strip().lower()
