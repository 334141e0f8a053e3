"""The state every call has, whichever side placed it: its dialog, media, events and
the way requests go out inside the dialog (RFC 3261 §12.2.1) and come to an end.

`Call` (in `call.py`) is put together from this base, the caller's side
(`outgoing.py`) and the callee's side (`incoming.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from sipline.core.clock import Entropy
from sipline.core.dialog import Dialog, DialogTable
from sipline.core.errors import LocalProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import Uri
from sipline.core.views import NameAddr
from sipline.media_io.session import MediaStats
from sipline.media_io.sources import SinkLike, SourceLike
from sipline.phone.config import UserAgentConfig
from sipline.phone.credentials import DigestClient
from sipline.phone.events import (
    CallEnded,
    CallEvent,
    CallFailed,
    CallState,
    DtmfReceived,
    EndedBy,
    UserAgentError,
)
from sipline.phone.media import CallMedia
from sipline.phone.session_timer import SessionTimer
from sipline.runtime.endpoint import ClientTransaction, Endpoint
from sipline.transport import Target

if TYPE_CHECKING:
    from sipline.phone.call import Call

__all__ = ["CallBase", "CallHost"]

log = logging.getLogger("sipline.ua")


class CallHost(Protocol):
    """What a call needs from its user agent."""

    endpoint: Endpoint
    dialogs: DialogTable
    entropy: Entropy
    config: UserAgentConfig
    digest: DigestClient | None

    def contact(self) -> NameAddr: ...

    def headers(self) -> list[tuple[str, str]]: ...

    def initial_routes(self) -> list[NameAddr]: ...

    async def first_hop(self, uri: Uri) -> Target: ...

    async def resolve(self, uri: Uri) -> Target: ...

    def new_media(self) -> CallMedia: ...

    def bind_dialog(self, dialog: Dialog, call: Call) -> None: ...

    def call_ended(self, call: Call) -> None: ...

    async def transfer_call(self, target: str, *, referred_by: str, like: Call) -> Call: ...

    async def allow_transfer(self, call: Call, target: str) -> bool: ...


class CallBase:
    """State and plumbing shared by both sides of a call."""

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
        self.outgoing = outgoing
        self.local = local
        self.remote = remote
        self.call_id = call_id
        self.media = media
        self.state = CallState.CALLING if outgoing else CallState.INCOMING
        self.dialog: Dialog | None = None
        loop = asyncio.get_running_loop()
        self.answered: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[CallEnded] = loop.create_future()
        # Nobody may await these; do not let them warn about unread exceptions.
        self.answered.add_done_callback(_consume)
        self._events: list[CallEvent] = []
        self._new_event = asyncio.Event()
        self._listeners: list[Callable[[CallEvent], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None  # the session timer (RFC 4028)
        self.session_timer: SessionTimer | None = None
        self._reinvite_lock = asyncio.Lock()
        self._reinvite_pending = False  # one of ours is in progress (§14.1)
        self._acks: dict[int, tuple[bytes, Target]] = {}  # 2xx ACKs by INVITE CSeq
        self._play_spec: SourceLike | None = None
        self._playback: asyncio.Future[None] | None = None
        self._record_spec: SinkLike | None = None
        self.end_reason: CallEnded | None = None
        media.session.on_dtmf = lambda digit: self._emit(DtmfReceived(digit, "rtp"))

    # -- events ---------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[CallEvent], None]) -> None:
        """Call `listener` with every event from now on."""
        self._listeners.append(listener)

    def _emit(self, event: CallEvent) -> None:
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
        self._record_spec = sink
        self.media.session.record(sink)

    def stats(self) -> MediaStats:
        return self.media.stats()

    # -- requests in the dialog (§12.2.1) -----------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None] | Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def _request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        contact: bool = False,
        on_response: Callable[[Request, Response], None] | None = None,
    ) -> Response:
        """Send a request in the dialog and wait for its final response; answers digest
        challenges, and ends the call when the dialog does (481, 408, §12.2.1.2)."""
        dialog = self.dialog
        if dialog is None or dialog.terminated:
            raise LocalProtocolError("the call has no dialog")
        headers = [*self.ua.headers(), *(extra or [])]
        request = dialog.create_request(
            method,
            contact=self.ua.contact() if contact else None,
            body=body,
            content_type=content_type,
            extra=headers,
        )
        target = await self.ua.resolve(dialog.next_hop())
        if self.ua.digest is not None:
            self.ua.digest.apply_cached(request)
        response = await self._send(request, target, on_response)
        for _ in range(2):
            digest = self.ua.digest
            if response.status not in (401, 407) or digest is None:
                break
            if not digest.authorize(request, response):
                break
            request.headers.remove("Via")
            request.headers.set("CSeq", f"{dialog.next_local_seq()} {method}")
            response = await self._send(request, target, on_response)
        dialog.receive_response(request, response)
        if dialog.terminated and self.state is not CallState.ENDED:
            by = EndedBy.REMOTE if response.status == 481 else EndedBy.NETWORK
            await self._end(
                f"{method} got {response.status} {response.reason}", by, response.status
            )
        return response

    async def _send(
        self,
        request: Request,
        target: Target,
        on_response: Callable[[Request, Response], None] | None,
    ) -> Response:
        def seen(response: Response) -> None:
            if on_response is not None:
                on_response(request, response)

        ct: ClientTransaction = self.ua.endpoint.send_request(request, target, on_response=seen)
        return await ct.final

    def _send_ack(self, dialog: Dialog, invite: Request, target: Target, body: bytes = b"") -> None:
        """The ACK for a 2xx (§13.2.2.4): a new branch, the INVITE's credentials; kept
        so that a retransmitted 2xx gets the same ACK again."""
        cseq = invite.cseq.seq
        cached = self._acks.get(cseq)
        endpoint = self.ua.endpoint
        if cached is not None:
            endpoint.transports.send(cached[0], cached[1])
            return
        extra = [
            (name, value)
            for name in ("Authorization", "Proxy-Authorization")
            for value in invite.headers.get_all(name)
        ]
        ack = dialog.create_ack(
            cseq,
            body=body,
            content_type="application/sdp" if body else None,
            extra=extra,
        )
        ack.headers.add("Via", endpoint.via_value(target, endpoint.new_branch()), first=True)
        data = ack.to_bytes()
        self._acks[cseq] = (data, target)
        endpoint.transports.send(data, target)

    # -- the end ----------------------------------------------------------------------------
    async def _bye(self, dialog: Dialog | None, *, wait_s: float = 2.0) -> None:
        """Send BYE (§15.1.1) and give it `wait_s` for an answer; the transaction goes on
        retransmitting after that, but a dead peer does not hold the caller up."""
        if dialog is None or dialog.terminated:
            return
        try:
            bye = dialog.create_request("BYE", extra=self.ua.headers())
            target = await self.ua.resolve(dialog.next_hop())
            ct = self.ua.endpoint.send_request(bye, target)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ct.final), wait_s)
        except (LocalProtocolError, OSError, UserAgentError) as exc:
            log.info("BYE not sent: %s", exc)
        except Exception as exc:  # resolution failures and the like: the call ends anyway
            log.info("BYE not sent: %s", exc)
        dialog.terminate()

    async def _bye_and_end(self, reason: str, by: EndedBy, status: int | None = None) -> None:
        await self._bye(self.dialog)
        await self._end(reason, by, status)

    async def _end(self, reason: str, by: EndedBy, status: int | None = None) -> None:
        """Tear the call down locally (the signalling that ends it is the caller's)."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        ended = CallEnded(reason, by, status)
        self.end_reason = ended
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.dialog is not None:
            self.dialog.terminate()
        if not self.answered.done():
            self.answered.set_exception(CallFailed(status or 0, reason))
        await self.media.close()
        self._emit(ended)
        if not self.ended.done():
            self.ended.set_result(ended)
        self.ua.call_ended(self)  # type: ignore[arg-type]

    def _arm_session_timer(self) -> None:
        """Arm the RFC 4028 timer for the current `session_timer` (see `Call`)."""

    @property
    def is_active(self) -> bool:
        return self.state is not CallState.ENDED

    def __repr__(self) -> str:
        side = "to" if self.outgoing else "from"
        return f"<Call {side} {self.remote.uri_text} {self.state.value}>"


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _log_failure(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("call task failed", exc_info=exc)
