"""A call: what a user of the agent holds. It is put together from small parts: the
INVITE session (`session.py`: dialog, media, re-INVITE, session timer, BYE), the
caller's or the callee's role (`caller.py`, `callee.py`) and blind transfer
(`transfer.py`). The call owns its state and events and hands the peer's requests
inside the dialog to the part they concern.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol

from sipline.core.dialog import Dialog
from sipline.core.message import Request, Response
from sipline.core.session_refresh import SessionTimer
from sipline.core.uri import Uri
from sipline.core.views import NameAddr
from sipline.media.stream import MediaStats
from sipline.media_io.sources import SinkLike, SourceLike
from sipline.phone.callee import CalleeRole
from sipline.phone.caller import CallerRole
from sipline.phone.config import ALLOW
from sipline.phone.events import (
    CallEnded,
    CallEvent,
    CallFailed,
    CallHeld,
    CallResumed,
    CallState,
    DtmfReceived,
    EndedBy,
    PlacedCall,
    UserAgentError,
)
from sipline.phone.media import CallMedia
from sipline.phone.services import AgentServices
from sipline.phone.session import InviteSession
from sipline.phone.transfer import Transfer
from sipline.runtime.endpoint import ServerTransaction
from sipline.sdp import Direction

__all__ = ["Call", "CallHost"]

log = logging.getLogger("sipline.ua")


class CallHost(AgentServices, Protocol):
    """What a call needs from its user agent, beyond the services every part uses."""

    def bind_dialog(self, dialog: Dialog, call: Call) -> None: ...

    def call_ended(self, call: Call) -> None: ...

    async def transfer_call(
        self, target: str, *, referred_by: str, play: SourceLike | None
    ) -> Call: ...

    async def allow_transfer(self, call: Call, target: str) -> bool: ...


class Call:
    """One call. Get one from `UserAgent.call` or from an incoming-call handler.

    Await `answered` (raises `CallFailed` if the call is not answered) and `ended`
    (the `CallEnded` reason); iterate `events()` or `add_listener` for the rest.
    """

    def __init__(
        self,
        host: CallHost,
        *,
        outgoing: bool,
        local: NameAddr,
        remote: NameAddr,
        call_id: str,
        media: CallMedia,
    ) -> None:
        self.ua = host
        self._outgoing = outgoing
        self.local = local
        self._remote = remote
        self._call_id = call_id
        self.state = CallState.CALLING if outgoing else CallState.INCOMING
        loop = asyncio.get_running_loop()
        self._answered: asyncio.Future[None] = loop.create_future()
        self._ended: asyncio.Future[CallEnded] = loop.create_future()
        # Nobody may await these; do not let them warn about unread exceptions.
        self._answered.add_done_callback(_consume)
        self._events: list[CallEvent] = []
        self._new_event = asyncio.Event()
        self._listeners: list[Callable[[CallEvent], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._play_spec: SourceLike | None = None
        self._playback: asyncio.Future[None] | None = None
        self.end_reason: CallEnded | None = None
        self.session = InviteSession(self, host, media)
        self._caller: CallerRole | None = None
        self._callee: CalleeRole | None = None
        self._transfer = Transfer(self, self.session)
        media.session.on_dtmf = lambda digit: self.emit(DtmfReceived(digit, "rtp"))

    # -- what the call is ---------------------------------------------------------------------
    @property
    def outgoing(self) -> bool:
        return self._outgoing

    @property
    def remote(self) -> NameAddr:
        return self._remote

    @property
    def call_id(self) -> str:
        return self._call_id

    @property
    def answered(self) -> asyncio.Future[None]:
        return self._answered

    @property
    def ended(self) -> asyncio.Future[CallEnded]:
        return self._ended

    @property
    def media(self) -> CallMedia:
        return self.session.media

    @property
    def dialog(self) -> Dialog | None:
        return self.session.dialog

    @property
    def session_timer(self) -> SessionTimer | None:
        """The RFC 4028 timer in force, if any."""
        return self.session.timer

    @property
    def invite(self) -> Request | None:
        """The INVITE of an incoming call (its Request-URI, To, History-Info, ...)."""
        return self._callee.invite if self._callee is not None else None

    @property
    def is_active(self) -> bool:
        return self.state is not CallState.ENDED

    def __repr__(self) -> str:
        side = "to" if self.outgoing else "from"
        return f"<Call {side} {self.remote.uri_text} {self.state.value}>"

    # -- events ---------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[CallEvent], None]) -> None:
        """Call `listener` with every event from now on."""
        self._listeners.append(listener)

    def emit(self, event: CallEvent) -> None:
        self._events.append(event)
        self._new_event.set()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("call event listener failed")

    async def events(self) -> AsyncIterator[CallEvent]:
        """Every event of the call from its start, ending with `CallEnded`."""
        index = 0
        while True:
            while index < len(self._events):
                event = self._events[index]
                index += 1
                yield event
                if isinstance(event, CallEnded):
                    return
            self._new_event.clear()
            await self._new_event.wait()

    @property
    def history(self) -> list[CallEvent]:
        return list(self._events)

    # -- media ----------------------------------------------------------------------------
    def play(self, source: SourceLike | None) -> asyncio.Future[None]:
        """Send `source` (a WAV path, samples, a source, a callable, an async iterator;
        None for silence). The future resolves when it has played to its end."""
        self._play_spec = source
        self._playback = self.media.session.play(source)
        return self._playback

    @property
    def playback(self) -> asyncio.Future[None] | None:
        """The future of what is playing now (see `play`), if anything is."""
        return self._playback

    def record(self, sink: SinkLike | None) -> None:
        """Send what we hear to `sink` (a WAV path, a sink, a callable)."""
        self.media.session.record(sink)

    def stats(self) -> MediaStats:
        return self.media.stats()

    # -- placing and receiving ------------------------------------------------------------------
    def place(self, uri: Uri, headers: list[tuple[str, str]]) -> None:
        """Send the INVITE (in the background; see `answered`)."""
        self._caller = CallerRole(self, self.ua, self.session)
        self.spawn(self._caller.place(uri, headers))

    async def receive(self, st: ServerTransaction) -> bool:
        """Check a new INVITE and ring; False when it was rejected here."""
        self._callee = CalleeRole(self, self.ua, self.session, st)
        return await self._callee.receive()

    async def answer(
        self, *, play: SourceLike | None = None, record: SinkLike | None = None
    ) -> None:
        """Answer an incoming call with 200 OK and start the media."""
        callee = self._callee
        if callee is None or self.state is not CallState.INCOMING:
            raise UserAgentError(f"cannot answer a call that is {self.state.value}")
        if play is not None:
            self.play(play)
        if record is not None:
            self.record(record)
        await callee.answer()

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Turn an incoming call down (486 Busy Here unless told otherwise)."""
        callee = self._callee
        if callee is None or self.state is not CallState.INCOMING:
            raise UserAgentError(f"cannot reject a call that is {self.state.value}")
        if not 300 <= status < 700:
            raise UserAgentError("a rejection is a 3xx-6xx status")
        await callee.reject(status, reason)

    # -- ending ---------------------------------------------------------------------------------
    async def hangup(self) -> None:
        """End the call however far it got: CANCEL, reject (603) or BYE."""
        if self.state is CallState.ENDED:
            return
        if self._caller is not None and self.state is not CallState.ANSWERED:
            await self._caller.cancel(self._ended)
            return
        if self._callee is not None and self.state is CallState.INCOMING:
            await self.reject(603, "Decline")
            return
        self.session.answers.stop()
        await self.session.bye_and_end("hung up", EndedBy.LOCAL)

    async def wait(self) -> None:
        """Until the call has ended."""
        await asyncio.shield(self.ended)

    async def end(self, reason: str, by: EndedBy, status: int | None = None) -> None:
        """Tear the call down locally (the signalling that ends it is the caller's)."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        ended = CallEnded(reason, by, status)
        self.end_reason = ended
        self.session.close()
        if not self._answered.done():
            self._answered.set_exception(CallFailed(status or 0, reason))
        await self.media.close()
        self.emit(ended)
        if not self._ended.done():
            self._ended.set_result(ended)
        self.ua.call_ended(self)

    # -- hold and resume (RFC 3264 §8.4), DTMF, transfer ----------------------------------------
    async def hold(self, *, inactive: bool = False) -> bool:
        """Put the peer on hold: a re-INVITE offering sendonly (or inactive)."""
        direction = Direction.INACTIVE if inactive else Direction.SENDONLY
        if await self.session.reinvite(direction):
            self.session.local_direction = direction
            self.emit(CallHeld(by_remote=False))
            return True
        return False

    async def resume(self) -> bool:
        if await self.session.reinvite(Direction.SENDRECV):
            self.session.local_direction = Direction.SENDRECV
            self.emit(CallResumed(by_remote=False))
            return True
        return False

    async def send_dtmf(self, digits: str, *, method: str = "rtp", duration_ms: int = 100) -> None:
        """Send DTMF digits: RFC 4733 events in the RTP stream, or SIP INFO requests with
        application/dtmf-relay when `method="info"` (for peers without telephone-event)."""
        if self.state is not CallState.ANSWERED:
            raise UserAgentError("DTMF needs an answered call")
        if method == "info":
            for digit in digits:
                body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
                await self.session.request("INFO", body=body, content_type="application/dtmf-relay")
            return
        if method != "rtp":
            raise ValueError("method: 'rtp' or 'info'")
        if self.media.session.config.dtmf_payload_type is None:
            raise UserAgentError("the peer did not accept telephone-event; use method='info'")
        await self.media.session.send_dtmf(digits, duration_ms=duration_ms)

    async def transfer(self, target: str, *, hangup: bool = True, timeout_s: float = 32.0) -> bool:
        """Ask the peer to call `target` instead (blind transfer). Returns whether the
        new call was answered; with `hangup` this call then ends (RFC 5589 §6.1)."""
        return await self._transfer.transfer(target, hangup=hangup, timeout_s=timeout_s)

    # -- the parts' view of the call (CallContext) ----------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None] | Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    def bind_dialog(self, dialog: Dialog) -> None:
        self.ua.bind_dialog(dialog, self)

    async def allow_transfer(self, target: str) -> bool:
        return await self.ua.allow_transfer(self, target)

    async def place_transfer(self, target: str, referred_by: str) -> PlacedCall:
        return await self.ua.transfer_call(target, referred_by=referred_by, play=self._play_spec)

    # -- what the agent hands to the call -------------------------------------------------------
    def on_request(self, st: ServerTransaction) -> Awaitable[None] | None:
        """A request from the peer inside the dialog."""
        method = st.request.method
        if method == "BYE":
            return self._on_bye(st)
        if method in ("INVITE", "UPDATE"):
            return self.session.on_reoffer(st)
        if method == "INFO":
            self._on_info(st)
        elif method == "REFER":
            return self._transfer.on_refer(st)
        elif method == "NOTIFY":
            self._transfer.on_notify(st)
        elif method == "OPTIONS":
            st.respond(200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        else:
            st.respond(405, extra=[("Allow", ALLOW)])
        return None

    def on_ack(self, request: Request) -> None:
        self.session.on_ack(request)

    def on_stray_2xx(self, response: Response) -> None:
        """A 2xx retransmitted after our INVITE transaction ended: ACK it again."""
        self.session.resend_ack(response.cseq.seq)

    async def _on_bye(self, st: ServerTransaction) -> None:
        st.respond(200)
        if self._callee is not None and self.state is CallState.INCOMING:
            self._callee.terminate_pending()
        self.session.answers.stop()
        await self.end("the other side hung up", EndedBy.REMOTE)

    def _on_info(self, st: ServerTransaction) -> None:
        request = st.request
        if request.content_type != "application/dtmf-relay":
            st.respond(415, extra=[("Accept", "application/dtmf-relay")])
            return
        st.respond(200)
        for line in request.body.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal" and value.strip():
                self.emit(DtmfReceived(value.strip().upper(), "info"))


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _log_failure(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("call task failed", exc_info=exc)
