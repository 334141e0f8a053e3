"""Subscribing to events (RFC 6665 subscriber) and publishing presence (RFC 3903).

A `Watch` subscribes to a resource's `presence` (RFC 3856, PIDF bodies) or
`message-summary` (RFC 3842), answers each NOTIFY, hands the updates out
(`updates()`, `next_update()`, or a callback), refreshes the subscription before it
expires, subscribes again when the notifier ended it with a reason that invites it
(RFC 6665 §4.1.3: deactivated, probation, timeout), and unsubscribes on `close()`.

A `PresencePublication` publishes our own presence, keeps its entity tag, refreshes
it with SIP-If-Match before it expires (RFC 3903 §4.2), replaces it on `update` and
removes it on `remove`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sipline.content.pidf import CONTENT_TYPE as PIDF_TYPE
from sipline.content.pidf import PidfError, PresenceDocument, parse_pidf, status_document
from sipline.content.summary import CONTENT_TYPE as SUMMARY_TYPE
from sipline.content.summary import MessageSummary, SummaryError, parse_summary
from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Response
from sipline.core.uri import Uri
from sipline.phone.events import UserAgentError
from sipline.phone.im import send_request
from sipline.phone.services import AgentServices
from sipline.runtime.endpoint import ServerTransaction
from sipline.runtime.timers import Timer

__all__ = ["PresencePublication", "Watch", "WatchUpdate"]

Spawn = Callable[[Coroutine[Any, Any, object]], None]

log = logging.getLogger("sipline.ua")

ACCEPTS = {"presence": PIDF_TYPE, "message-summary": SUMMARY_TYPE}
_RESUBSCRIBE = ("deactivated", "probation", "timeout")


@dataclass(frozen=True, slots=True)
class WatchUpdate:
    """One NOTIFY: the subscription's state and what the body says."""

    target: str
    event: str
    state: str  # active, pending, terminated
    reason: str | None = None
    presence: PresenceDocument | None = None
    summary: MessageSummary | None = None

    def describe(self) -> str:
        if self.state == "terminated":
            return f"subscription ended ({self.reason or 'no reason given'})"
        if self.state == "pending":
            return "waiting for authorisation"
        if self.presence is not None:
            return self.presence.describe()
        if self.summary is not None:
            counts = self.summary.counts.get("text-message")
            new = counts.new if counts is not None else 0
            return f"{new} message{'s' if new != 1 else ''} waiting"
        return self.state


def _parse_state(value: str) -> tuple[str, str | None, int | None]:
    state, *params = [p.strip() for p in value.split(";")]
    reason: str | None = None
    expires: int | None = None
    for p in params:
        name, _, v = p.partition("=")
        if name.lower() == "reason":
            reason = v.strip().lower()
        elif name.lower() == "expires" and v.strip().isdigit():
            expires = int(v.strip())
    return state.lower(), reason, expires


class Watch:
    """A subscription to `event` of `target` (see the module docstring)."""

    def __init__(
        self,
        ua: AgentServices,
        target: Uri,
        event: str = "presence",
        *,
        expires_s: int = 600,
        on_update: Callable[[WatchUpdate], None] | None = None,
        registry: dict[tuple[str, str], Watch],
        spawn: Spawn,
    ) -> None:
        if event not in ACCEPTS:
            raise ValueError(f"event must be one of {', '.join(ACCEPTS)}")
        self.ua = ua
        self._registry = registry  # the agent's watches, by (Call-ID, our tag)
        self._spawn = spawn
        self.target = target
        self.event = event
        self.expires_s = expires_s
        self.on_update = on_update
        self.dialog: Dialog | None = None
        self.latest: WatchUpdate | None = None
        self.call_id = ua.endpoint.new_call_id()
        self.local_tag = ua.endpoint.new_tag()
        self._updates: asyncio.Queue[WatchUpdate] = asyncio.Queue()
        self._refresh: Timer | None = None
        self._closing = False
        self.ended = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.call_id, self.local_tag)

    def _extra(self, expires: int) -> list[tuple[str, str]]:
        return [("Event", self.event), ("Accept", ACCEPTS[self.event]), ("Expires", str(expires))]

    async def start(self) -> None:
        """SUBSCRIBE; raises `UserAgentError` when refused."""
        self._registry[self.key] = self
        request, response = await send_request(
            self.ua,
            "SUBSCRIBE",
            self.target,
            extra=self._extra(self.expires_s),
            contact=True,
            call_id=self.call_id,
            from_tag=self.local_tag,
        )
        if response.status >= 300:
            self._registry.pop(self.key, None)
            self.ended = True
            raise UserAgentError(f"subscription refused: {response.status} {response.reason}")
        try:
            self.dialog = self.ua.dialogs.add(Dialog.as_uac(request, response))
        except RemoteProtocolError as exc:
            raise UserAgentError(f"unusable answer to SUBSCRIBE: {exc.reason}") from None
        self._arm(response)

    def _arm(self, response: Response) -> None:
        granted = response.expires if response.expires is not None else self.expires_s
        if self._refresh is not None:
            self._refresh.cancel()
        if granted > 0:
            delay = max(1.0, granted - min(32.0, granted / 4))  # ahead of the expiry
            timers = self.ua.endpoint.timers
            self._refresh = timers.call_later(delay, lambda: self._spawn(self._renew()))

    async def _renew(self, expires: int | None = None) -> Response | None:
        dialog = self.dialog
        if dialog is None or dialog.terminated:
            return None
        value = self.expires_s if expires is None else expires
        try:
            request = dialog.create_request(
                "SUBSCRIBE", contact=self.ua.contact(), extra=self._extra(value)
            )
            target = await self.ua.resolve(dialog.next_hop())
            response = await self.ua.sender.send(request, target, next_cseq=dialog.next_local_seq)
        except (UserAgentError, LocalProtocolError, OSError) as exc:
            log.info("cannot refresh the subscription to %s: %s", self.target, exc)
            return None
        dialog.receive_response(request, response)
        if response.status < 300 and value > 0:
            self._arm(response)
        elif response.status >= 300 and not self._closing:
            await self._again()
        return response

    async def _again(self) -> None:
        """Subscribe anew (a fresh dialog) after the old one ended."""
        if self.dialog is not None:
            self.dialog.terminate()
        self._registry.pop(self.key, None)
        self.call_id = self.ua.endpoint.new_call_id()
        self.local_tag = self.ua.endpoint.new_tag()
        self.dialog = None
        try:
            await self.start()
        except UserAgentError as exc:
            self._end(WatchUpdate(str(self.target), self.event, "terminated", str(exc)))

    def on_notify(self, st: ServerTransaction) -> None:
        request = st.request
        state, reason, _ = _parse_state(request.headers.get("subscription-state") or "")
        if state not in ("active", "pending", "terminated"):
            st.respond(400, "Bad Request (Subscription-State missing or unknown)")
            return
        if self.dialog is not None:
            try:
                self.dialog.receive_request(request)
            except RemoteProtocolError as exc:
                st.respond(exc.status, exc.reason)
                return
        presence = summary = None
        if request.body:
            try:
                if self.event == "presence":
                    presence = parse_pidf(request.body)
                else:
                    summary = parse_summary(request.body)
            except (PidfError, SummaryError) as exc:
                st.respond(400, f"Bad Request ({exc})")
                return
        st.respond(200)
        update = WatchUpdate(str(self.target), self.event, state, reason, presence, summary)
        if state == "terminated":
            if not self._closing and reason in _RESUBSCRIBE:
                self._deliver(update)
                self._spawn(self._again())
                return
            self._end(update)
            return
        self._deliver(update)

    def _deliver(self, update: WatchUpdate) -> None:
        self.latest = update
        self._updates.put_nowait(update)
        if self.on_update is not None:
            self.on_update(update)

    def _end(self, update: WatchUpdate) -> None:
        self.ended = True
        if self._refresh is not None:
            self._refresh.cancel()
        if self.dialog is not None:
            self.dialog.terminate()
        self._registry.pop(self.key, None)
        self._deliver(update)

    async def next_update(self, timeout: float | None = None) -> WatchUpdate:
        return await self.ua.endpoint.timers.wait_for(self._updates.get(), timeout)

    async def updates(self) -> AsyncIterator[WatchUpdate]:
        """Every update until the subscription ends (the terminated one last)."""
        while True:
            update = await self._updates.get()
            yield update
            if update.state == "terminated" and self.ended:
                return

    async def close(self) -> None:
        """Unsubscribe (Expires: 0, RFC 6665 §4.1.2.3)."""
        if self.ended:
            return
        self._closing = True
        if self._refresh is not None:
            self._refresh.cancel()
        with contextlib.suppress(TimeoutError):
            await self.ua.endpoint.timers.wait_for(self._renew(0), 5)
        self.ended = True
        self._registry.pop(self.key, None)


class PresencePublication:
    """Our presence at the server (see the module docstring)."""

    def __init__(
        self, ua: AgentServices, *, expires_s: int = 3600, spawn: Spawn | None = None
    ) -> None:
        self.ua = ua
        self._tasks: set[asyncio.Task[object]] = set()
        self._spawn = spawn or self._own_task
        self.expires_s = expires_s
        self.etag: str | None = None
        self.document: PresenceDocument | None = None
        self._refresh: Timer | None = None

    async def _publish(self, body: bytes, expires: int) -> Response:
        extra = [("Event", "presence"), ("Expires", str(expires))]
        if self.etag is not None:
            extra.append(("SIP-If-Match", self.etag))
        _, response = await send_request(
            self.ua,
            "PUBLISH",
            self.ua.config.aor,
            body=body,
            content_type=PIDF_TYPE if body else None,
            extra=extra,
        )
        if response.status == 412 and self.etag is not None and body:
            self.etag = None  # the server forgot it: publish afresh (RFC 3903 §4.4)
            return await self._publish(body, expires)
        if response.status >= 300:
            raise UserAgentError(f"PUBLISH refused: {response.status} {response.reason}")
        self.etag = response.headers.get("sip-etag") or self.etag
        granted = response.expires if response.expires is not None else expires
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if granted > 0:
            delay = max(1.0, granted - min(32.0, granted / 4))
            self._refresh = self.ua.endpoint.timers.call_later(
                delay, lambda: self._spawn(self._refresh_now())
            )
        return response

    def _own_task(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_now(self) -> None:
        try:
            await self._publish(b"", self.expires_s)
        except UserAgentError as exc:
            log.info("presence refresh failed: %s", exc)
            if self.document is not None:
                self.etag = None
                with contextlib.suppress(UserAgentError):
                    await self._publish(self.document.serialize(), self.expires_s)

    async def update(self, status: str = "online", note: str | None = None) -> Response:
        """Publish `status` (online, away, busy, offline) with an optional note."""
        self.document = status_document(
            f"sip:{self.ua.config.aor.aor}", status, note=note, contact=str(self.ua.config.aor)
        )
        return await self._publish(self.document.serialize(), self.expires_s)

    async def remove(self) -> None:
        """Withdraw the publication (Expires: 0 with its entity tag, RFC 3903 §4.5)."""
        with contextlib.suppress(UserAgentError):
            await self.withdraw()

    async def withdraw(self) -> bool:
        """Withdraw the publication (RFC 3903 §4.5): True when removed, False when the
        server no longer had it (412, §6 step 3) or there is none; `UserAgentError`
        when refused otherwise."""
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        etag, self.etag = self.etag, None
        if etag is None:
            return False
        extra = [("Event", "presence"), ("Expires", "0"), ("SIP-If-Match", etag)]
        _, response = await send_request(self.ua, "PUBLISH", self.ua.config.aor, extra=extra)
        if response.status == 412:
            return False
        if response.status >= 300:
            raise UserAgentError(f"PUBLISH refused: {response.status} {response.reason}")
        return True
