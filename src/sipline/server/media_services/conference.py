"""Conference rooms: `sip:room-NAME@domain` (README "Conference rooms").

A room exists while someone is in it: created at its first join (with the
`[[rooms]]` settings when it is listed there: PIN, participant limit, moderators,
recording), gone when the last one leaves. A caller with a PIN to enter hears a
prompt beep and keys the PIN and `#` (three tries; then a low tone and the call is
ended). In the room, DTMF keys: `*6` mute/unmute yourself, `*4`/`*5` what you hear
quieter/louder, `*7`/`*8` what you say quieter/louder (3 dB steps, ±12 dB); a
moderator's `*9` mutes everyone else and `*0` unmutes them. The
state of every room is published to the database for `sipline conference list/show`,
whose `kick`/`mute`/`unmute` come back through a command queue polled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from sipline.core.uri import SipUri
from sipline.media.audio import tone
from sipline.media.mixer import MAX_VOLUME_STEPS
from sipline.phone import Call, CallEvent, DtmfReceived
from sipline.runtime.timers import Timers
from sipline.server.media_services.room import Member, Room
from sipline.server.media_services.rooms_config import ROOM_NAME, ROOM_PREFIX, RoomConfig
from sipline.storage.base import StoreError
from sipline.storage.conference import ConferenceStore, RoomCommand

__all__ = ["PREFIX", "ConferenceService"]

log = logging.getLogger("sipline.conference")

PREFIX = ROOM_PREFIX
PIN_TRIES = 3
PIN_TIMEOUT_S = 10.0  # per try, from the prompt
COMMAND_POLL_S = 0.25
_PROMPT = tone(440, duration_s=0.2, amplitude=0.25)
_REFUSED = tone(300, duration_s=0.5, amplitude=0.25)


class ConferenceService:
    def __init__(
        self,
        rooms: list[RoomConfig],
        *,
        max_participants: int = 20,
        database: Path | None = None,
        node: str = "",
        timers: Timers,
    ) -> None:
        self.configured = {r.name.lower(): r for r in rooms}
        self.max_participants = max_participants
        self.rooms: dict[str, Room] = {}
        self._store: ConferenceStore | None = None
        self._poller: asyncio.Task[None] | None = None
        self._database = database
        self._node = node  # the node whose rooms these are (server/node.py)
        self._timers = timers

    # -- the handler the media host calls ------------------------------------------------------
    async def __call__(self, call: Call) -> None:
        self.start()
        invite = call.invite
        uri = invite.uri if invite is not None else None
        user = uri.user if isinstance(uri, SipUri) and uri.user else ""
        name = user[len(PREFIX) :]
        if not ROOM_NAME.fullmatch(name):
            await call.reject(404, "Not Found (no such room)")
            return
        settings = self.configured.get(name.lower(), RoomConfig(name))
        limit = settings.max_participants or self.max_participants
        room = self.rooms.get(name.lower())
        if room is not None and len(room) >= limit:
            await call.reject(486, "Busy Here (the room is full)")
            return
        digits: asyncio.Queue[str] = asyncio.Queue()
        call.add_listener(lambda event: _queue_digit(event, digits))
        await call.answer()
        if settings.pin is not None and not await self._pin_entered(call, settings.pin, digits):
            log.info("%s: wrong PIN from %s", name, call.remote.uri_text)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await self._timers.wait_for(call.play(_REFUSED), 2)
            await call.hangup()
            return
        if not call.is_active:
            return
        room = self.rooms.get(name.lower())
        if room is None:
            room = self.rooms[name.lower()] = Room(
                settings.name,
                record=settings.record,
                on_change=self._publish,
                on_empty=self._forget,
            )
        elif len(room) >= limit:  # filled while this caller keyed the PIN
            await call.hangup()
            return
        who = _aor(call)
        member = room.join(call, who, moderator=who in settings.moderators)
        log.info("%s: %s joined as %d (%d in the room)", room.name, who, member.number, len(room))
        controls = asyncio.ensure_future(self._controls(room, member, digits))
        try:
            await asyncio.shield(call.ended)
        finally:
            controls.cancel()
            room.leave(member)
            log.info("%s: %s left (%d in the room)", room.name, who, len(room))

    async def _pin_entered(self, call: Call, pin: str, digits: asyncio.Queue[str]) -> bool:
        """Prompt, then read digits to `#` (or as many as the PIN has); three tries."""
        for _ in range(PIN_TRIES):
            call.play(_PROMPT)
            keyed = ""
            deadline = self._timers.now() + PIN_TIMEOUT_S
            while call.is_active:
                try:
                    left = max(0.0, deadline - self._timers.now())
                    digit = await self._timers.wait_for(digits.get(), left)
                except TimeoutError:
                    break
                if digit == "#":
                    break
                keyed += digit
                if len(keyed) >= len(pin) and keyed == pin:
                    break
            if keyed == pin:
                call.play(None)
                return True
            if not call.is_active:
                return False
        return False

    async def _controls(self, room: Room, member: Member, digits: asyncio.Queue[str]) -> None:
        star = False
        while True:
            digit = await digits.get()
            if digit == "*":
                star = True
                continue
            if not star:
                continue
            star = False
            p = room.mixer.participants.get(member.number)
            if p is None:
                return
            if digit == "6":
                room.set_muted(member.number, not p.muted)
            elif digit in "45":
                p.listen_step = _step(p.listen_step, -1 if digit == "4" else 1)
            elif digit in "78":
                p.talk_step = _step(p.talk_step, -1 if digit == "7" else 1)
            elif digit in "90" and member.moderator:
                for number in room.members:
                    if number != member.number:
                        room.set_muted(number, digit == "9")

    # -- rooms come and go ---------------------------------------------------------------------
    def _forget(self, room: Room) -> None:
        if self.rooms.get(room.name.lower()) is room:
            del self.rooms[room.name.lower()]

    def _publish(self, room: Room) -> None:
        store = self._store
        if store is None:
            return
        members = [
            {
                "number": m.number,
                "who": m.who,
                "codec": m.codec,
                "muted": room.muted(m.number),
                "moderator": m.moderator,
                "joined_at": m.joined_at,
            }
            for m in room.members.values()
        ]
        try:
            store.publish(room.name, members)
        except StoreError as exc:
            log.warning("cannot publish the state of room %s: %s", room.name, exc)

    def start(self) -> None:
        """Clear what a previous run published and poll the command queue."""
        if self._poller is not None or self._database is None:
            return
        try:
            self._store = ConferenceStore(self._database, host=self._node)
            self._store.reset()
        except StoreError as exc:
            log.warning("%s: `sipline conference` commands will not work", exc)
            return
        self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        store = self._store
        assert store is not None
        while True:
            await self._timers.sleep(COMMAND_POLL_S)
            try:
                commands = await asyncio.to_thread(store.take_commands)
            except StoreError as exc:
                log.warning("cannot read conference commands: %s", exc)
                continue
            for command in commands:
                self._apply(command)

    def _apply(self, command: RoomCommand) -> None:
        room = self.rooms.get(command.room.lower())
        member = room.members.get(command.member) if room is not None else None
        if room is None or member is None:
            return
        if command.action == "kick":
            if member.call is not None:
                member.call.spawn(member.call.hangup())
        else:
            room.set_muted(member.number, command.action == "mute")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._store is not None:
            store = self._store
            self._store = None

            def clear() -> None:
                with contextlib.suppress(StoreError):
                    store.reset()
                store.close()

            await asyncio.to_thread(clear)  # waits for a poll still running there


def _step(value: int, delta: int) -> int:
    return max(-MAX_VOLUME_STEPS, min(MAX_VOLUME_STEPS, value + delta))


def _queue_digit(event: CallEvent, digits: asyncio.Queue[str]) -> None:
    if isinstance(event, DtmfReceived):
        digits.put_nowait(event.digit)


def _aor(call: Call) -> str:
    uri = call.remote.uri
    return uri.aor if isinstance(uri, SipUri) else call.remote.uri_text
