"""The voicemail handlers of the media host: a call to `sip:voicemail@domain` leaves a
message, a call to `sip:*98@domain` listens to the caller's own mailbox.

Whose mailbox a message is for comes from the Request-URI, as RFC 4458 §3 writes a
voicemail URI (`sip:voicemail@example.com;target=sip:alice%40example.com;cause=408`),
else from the History-Info entry before the voicemail one (RFC 7044), else from the
Diversion field (RFC 5806). The `*98` caller is the From of a request the proxy has
authenticated (calls from a served domain are challenged).

The dialogues are `machine.Deposit` and `machine.Retrieval`; this module only feeds
them the call's events and carries out their actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipline.core.uri import SipUri
from sipline.media.audio import ArraySink
from sipline.media.codecs.base import Pcm
from sipline.media_io.audio_files import AudioFileError, read_wav, write_wav
from sipline.phone.events import CallEnded, DtmfReceived, UserAgentError
from sipline.runtime.timers import Timers
from sipline.server.voicemail.address import DEPOSIT_USER, RETRIEVAL_USER, mailbox_of
from sipline.server.voicemail.machine import (
    Action,
    DeleteMessage,
    Deposit,
    Hangup,
    MarkHeard,
    Play,
    PlayMessage,
    Retrieval,
    SaveRecording,
    StartRecording,
)
from sipline.server.voicemail.pin import check_pin
from sipline.server.voicemail.prompts import Prompts
from sipline.storage import AsyncStore, StoreError

if TYPE_CHECKING:
    from sipline.core.message import Request
    from sipline.phone.call import Call

__all__ = ["VoicemailService", "VoicemailSettings"]

log = logging.getLogger("sipline.voicemail")

_SAMPLE_RATE = 8000


@dataclass(frozen=True, slots=True)
class VoicemailSettings:
    max_message_s: float = 120.0
    speech: bool = True
    min_message_s: float = 0.5  # shorter recordings (a hang-up at the beep) are dropped
    # *98 to a mailbox without a PIN only when the proxy authenticates callers (the
    # From is then theirs); with `[auth] authenticate_calls = false` a PIN is required.
    require_pin: bool = False
    max_messages: int = 100  # per mailbox: a full one refuses new messages (486)


class VoicemailService:
    """`handle(call)` answers a call to a voicemail address. `on_count_changed(aor)`
    tells the message-waiting notifier; `on_message(aor, caller, wav)` the mailer."""

    def __init__(
        self,
        store: AsyncStore,
        settings: VoicemailSettings | None = None,
        *,
        timers: Timers,
        on_count_changed: Callable[[str], Awaitable[None]] | None = None,
        on_message: Callable[[str, str, bytes, float], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings if settings is not None else VoicemailSettings()
        self.prompts = Prompts(speech=self.settings.speech)
        self._timers = timers
        self._wall = timers.clock.wall
        self._on_count_changed = on_count_changed
        self._on_message = on_message

    @staticmethod
    def matches(user: str) -> bool:
        return user.lower() in (DEPOSIT_USER, RETRIEVAL_USER)

    async def handle(self, call: Call) -> None:
        request = call.invite
        if request is None:
            return
        uri = request.uri
        user = uri.user.lower() if isinstance(uri, SipUri) and uri.user else ""
        try:
            if user == RETRIEVAL_USER:
                from_uri = request.from_.uri
                aor = from_uri.aor if isinstance(from_uri, SipUri) else None
                if aor is None or not await self._exists(aor):
                    await call.reject(404)
                    return
                await self._retrieve(call, aor)
            else:
                mailbox = mailbox_of(request)
                if mailbox is None or not await self._exists(mailbox):
                    await call.reject(404, "Not Found (no such mailbox)")
                    return
                store = self.store.store
                new, old = await self.store.call(lambda: store.count_voicemail(mailbox))
                if new + old >= self.settings.max_messages:
                    log.info("voicemail for %s refused: the mailbox is full", mailbox)
                    await call.reject(486, "Busy Here (mailbox full)")
                    return
                await self._deposit(call, mailbox, _caller(request))
        except StoreError as exc:
            log.warning("voicemail store failed: %s", exc)
            with contextlib.suppress(UserAgentError):
                if call.is_active:
                    await call.hangup()

    async def _exists(self, aor: str) -> bool:
        user, _, domain = aor.rpartition("@")
        store = self.store.store
        return await self.store.call(lambda: store.get_user(user, domain)) is not None

    # -- leaving a message -----------------------------------------------------------------
    async def _deposit(self, call: Call, aor: str, caller: str) -> None:
        box = await self.store.call(lambda: self.store.store.get_mailbox(aor))
        greeting = self.prompts.get("greeting")
        if box.greeting is not None:
            try:
                greeting = read_wav(io.BytesIO(box.greeting))
            except AudioFileError as exc:
                log.warning("the greeting of %s is unreadable (%s): the default plays", aor, exc)
        machine = Deposit(self.settings.max_message_s)
        sink = ArraySink()
        saved: list[Pcm] = []

        def act(action: Action) -> Pcm | None:
            if isinstance(action, Play):
                return greeting if action.prompt == "greeting" else self.prompts.get(action.prompt)
            if isinstance(action, StartRecording):
                call.record(sink)
            elif isinstance(action, SaveRecording):
                with contextlib.suppress(UserAgentError, RuntimeError, OSError):
                    call.record(None)  # the call may have ended (and its media closed)
                saved.append(sink.samples())
            return None

        await call.answer()
        await _drive(call, machine, self._timers, act)
        if saved:
            await self._keep(aor, caller, saved[0])

    async def _keep(self, aor: str, caller: str, samples: Pcm) -> None:
        duration = len(samples) / _SAMPLE_RATE
        if duration < self.settings.min_message_s:
            log.info("voicemail for %s from %s too short (%.1f s): dropped", aor, caller, duration)
            return
        buf = io.BytesIO()
        write_wav(buf, samples, sample_rate=_SAMPLE_RATE)
        wav, now = buf.getvalue(), self._wall()
        store = self.store.store
        await self.store.write(lambda: store.add_voicemail(aor, caller, now, duration, wav))
        log.info("voicemail for %s from %s (%.1f s)", aor, caller, duration)
        if self._on_count_changed is not None:
            await self._on_count_changed(aor)
        if self._on_message is not None:
            await self._on_message(aor, caller, wav, duration)

    # -- listening ---------------------------------------------------------------------------
    async def _retrieve(self, call: Call, aor: str) -> None:
        store = self.store.store
        box = await self.store.call(lambda: store.get_mailbox(aor))
        listed = await self.store.call(lambda: store.list_voicemail(aor))
        ids = [m.id for m in listed if not m.heard] + [m.id for m in listed if m.heard]
        pin_hash = box.pin_hash
        if pin_hash is None and self.settings.require_pin:
            await call.reject(403, "Forbidden (set a voicemail PIN first)")
            return
        pin_ok = (lambda pin: check_pin(pin, pin_hash)) if pin_hash is not None else None
        machine = Retrieval(ids, pin_ok)
        changed: list[bool] = []
        audio: dict[int, Pcm] = {}

        async def load(mid: int) -> Pcm:
            if mid not in audio:
                m = await self.store.call(lambda: store.get_voicemail(aor, mid))
                try:
                    audio[mid] = read_wav(io.BytesIO(m.audio)) if m is not None else _empty()
                except AudioFileError:
                    audio[mid] = _empty()
            return audio[mid]

        async def act_async(action: Action) -> Pcm | None:
            if isinstance(action, Play):
                return self.prompts.get(action.prompt)
            if isinstance(action, PlayMessage):
                return await load(action.message_id)
            if isinstance(action, MarkHeard):
                mid = action.message_id
                if await self.store.write(lambda: store.mark_voicemail_heard(aor, mid)):
                    changed.append(True)
            elif isinstance(action, DeleteMessage):
                mid = action.message_id
                if await self.store.write(lambda: store.remove_voicemail(aor, mid)):
                    changed.append(True)
            return None

        await call.answer()
        await _drive(
            call,
            machine,
            self._timers,
            None,
            act_async,
            on_change=self._count_changed(aor, changed),
        )

    def _count_changed(self, aor: str, changed: list[bool]) -> Callable[[], Awaitable[None]]:
        async def tell() -> None:
            if changed and self._on_count_changed is not None:
                changed.clear()
                await self._on_count_changed(aor)

        return tell


def _empty() -> Pcm:
    return ArraySink().samples()


def _caller(request: Request) -> str:
    uri = request.from_.uri
    return uri.aor if isinstance(uri, SipUri) and uri.user else str(uri)


def _played(
    inbox: asyncio.Queue[tuple[str, str, int]], generation: int
) -> Callable[[asyncio.Future[None]], None]:
    return lambda _f: inbox.put_nowait(("played", "", generation))


async def _drive(
    call: Call,
    machine: Deposit | Retrieval,
    timers: Timers,
    act: Callable[[Action], Pcm | None] | None,
    act_async: Callable[[Action], Awaitable[Pcm | None]] | None = None,
    *,
    on_change: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Feed `machine` the call's events until it is done or the call ends; its
    deadlines (no key pressed, the longest message) run on `timers`."""
    inbox: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
    generation = [0]

    def heard(event: object) -> None:
        if isinstance(event, DtmfReceived):
            inbox.put_nowait(("dtmf", event.digit, 0))
        elif isinstance(event, CallEnded):
            inbox.put_nowait(("hangup", "", 0))

    call.add_listener(heard)
    if not call.is_active:
        inbox.put_nowait(("hangup", "", 0))

    async def run(actions: list[Action]) -> bool:
        for action in actions:
            pcm = act(action) if act is not None else None
            if act_async is not None:
                pcm = await act_async(action)
            if pcm is not None:
                generation[0] += 1
                mine = generation[0]
                done = call.play(pcm)
                done.add_done_callback(_played(inbox, mine))
            if isinstance(action, Hangup):
                with contextlib.suppress(UserAgentError):
                    await call.hangup()
                return False
        if on_change is not None:
            await on_change()
        return True

    if not await run(machine.start(now=timers.now())):
        return
    while True:
        deadline = machine.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - timers.now())
        try:
            kind, digit, gen = await timers.wait_for(inbox.get(), timeout)
        except TimeoutError:
            if not await run(machine.tick(now=timers.now())):
                return
            continue
        now = timers.now()
        if kind == "hangup":
            await run(machine.hung_up(now=now))
            return
        if kind == "played":
            if gen != generation[0]:
                continue  # a prompt that was replaced before its end
            actions = machine.played(now=now)
        else:
            actions = machine.dtmf(digit, now=now)
        if not await run(actions):
            return
