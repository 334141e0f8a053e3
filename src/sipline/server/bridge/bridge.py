"""One bridged call: a browser's peer connection (`webrtc`) and a plain RTP stream to the
phone (`sipline.phone.media.CallMedia`: G.711 or Opus, SDES-SRTP when the phone offers
or takes it), with the audio carried across both ways.

The SDP each side sees is decided here from `plan`: the caller's offer is answered on
its own side and a fresh offer of the other kind goes to the callee; the callee's
answer is taken and the caller gets the answer made at the start. A later offer from
either side (hold, resume, refresh) is relayed the same way over the transports
already set up: the direction passes through, the WebRTC side keeps its ICE and DTLS
(no restart), the phone side may move to another address. Audio crosses at 48 kHz on
the WebRTC side and the phone codec's rate on the other, resampled by FFmpeg's
swresample (PyAV) only when the rates differ. The WebRTC side has no telephone-event,
so the phone's RFC 4733 keys reach the browser as in-band tones.
"""

from __future__ import annotations

import asyncio
import logging

import av
import numpy as np

from sipline.core.clock import Entropy
from sipline.core.errors import RemoteProtocolError
from sipline.media.audio import CallbackSink, CallbackSource
from sipline.media.codecs.base import Pcm
from sipline.media.dtmf import dtmf_tone
from sipline.media.srtp import srtp_available
from sipline.phone.media import CallMedia, MediaOptions
from sipline.sdp import Direction, SessionDescription
from sipline.server.bridge.plan import (
    PHONE_CODECS,
    Role,
    audio_direction,
    origin_version,
    with_direction,
    with_version,
)
from sipline.server.bridge.webrtc import RATE, PcmFifo, WebRtcPeer

__all__ = ["Bridge", "BridgeError"]

log = logging.getLogger("sipline.bridge")

# A key played in-band: Q.24 asks for at least 40 ms of tone and 40 ms of pause.
KEY_MS, PAUSE_MS = 120, 60


class BridgeError(Exception):
    """An SDP the bridge cannot take (the request or response then passes untouched)."""


def _resampler(rate: int) -> av.AudioResampler:
    return av.AudioResampler(format="s16", layout="mono", rate=rate)


def _frame(samples: Pcm, rate: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


class Bridge:
    """See the module docstring. `answered` once the callee's SDP arrived."""

    def __init__(self, role: Role, *, entropy: Entropy, host: str, advertise: str) -> None:
        self.role = role
        srtp = "optional" if srtp_available() else "off"
        self.phone = CallMedia(
            MediaOptions(codecs=PHONE_CODECS, srtp=srtp),
            entropy=entropy,
            bind_host=host,
            advertise_host=advertise,
            username="sipline",
        )
        self.webrtc = WebRtcPeer(self._from_webrtc)
        self.to_phone = PcmFifo()
        self._phone_rate = 0
        self._down: av.AudioResampler | None = None  # 48 kHz -> the phone's rate
        self._up: av.AudioResampler | None = None  # the phone's rate -> 48 kHz
        self._keys = np.zeros(0, dtype=np.int16)  # key tones still to mix in, at 48 kHz
        self.webrtc_sdp = ""  # what the WebRTC side last got from us
        self.phone_sdp = b""  # what the phone last got from us (an answer when it offered)
        self._answer_seen: bytes | None = None
        self._before: tuple[SessionDescription | None, Direction] | None = None
        self._pending: str | None = None  # the side our re-offer went to: "webrtc", "phone"
        self._awaiting_ack: str | None = None  # the side whose answer is in its ACK
        self._ack_seen: bytes | None = None
        self._accepting: asyncio.Future[None] | None = None
        self.answered = False
        self.closed = False
        self.opened_at = asyncio.get_running_loop().time()

    # -- the first offer and answer --------------------------------------------------------
    async def open(self, offer: bytes) -> bytes:
        """The body the callee gets for the caller's `offer`."""
        await self.phone.open()
        try:
            if self.role is Role.WEBRTC_OFFERS:
                self.webrtc_sdp = await self.webrtc.answer(offer.decode("utf-8", "replace"))
                return self.phone.offer(audio_direction(offer))
            self.phone_sdp = self.phone.answer(offer)
            self._connect_phone()
            return (await self.webrtc.offer()).encode()
        except (RemoteProtocolError, ValueError) as exc:
            raise BridgeError(str(exc)) from None

    def answer(self, body: bytes) -> bytes:
        """The body the caller gets for the callee's answer `body` (the same each time the
        answer comes again: a reliable 18x, the 2xx, its retransmissions)."""
        if body != self._answer_seen:
            self._answer_seen = body
            try:
                if self.role is Role.WEBRTC_OFFERS:
                    self.phone.receive_answer(body)
                    self._connect_phone()
                    direction = audio_direction(body)
                    self.webrtc_sdp = with_direction(self.webrtc_sdp, direction)
                else:
                    text = body.decode("utf-8", "replace")
                    self._accepting = asyncio.ensure_future(self.webrtc.accept(text))
            except RemoteProtocolError as exc:
                raise BridgeError(str(exc)) from None
            self.answered = True
        if self.role is Role.WEBRTC_OFFERS:
            return self.webrtc_sdp.encode()
        return self.phone_sdp

    # -- later offers ----------------------------------------------------------------------
    def reoffer(self, body: bytes, *, from_webrtc: bool) -> bytes:
        """A later offer from one side (RFC 3264 §8): the offer the other side gets."""
        direction = audio_direction(body)
        try:
            self._awaiting_ack = None
            if from_webrtc:
                self._pending = "phone"
                self._before = (self.phone.local_sdp, self.phone.offered_direction)
                return self.phone.offer(direction)
            self.phone_sdp = self.phone.answer(body)
            self._connect_phone()
        except (RemoteProtocolError, ValueError) as exc:
            raise BridgeError(str(exc)) from None
        self._pending = "webrtc"
        return self._webrtc_description(direction)

    def solicited_offer(self, *, from_webrtc: bool) -> bytes:
        """A re-INVITE without an offer from one side (RFC 3261 §14.1): our offer to the
        other side, as things stand. Its answer comes in the 2xx (`reanswer`), which
        then carries our offer to the side that asked, answered in its ACK (`ack`)."""
        self._awaiting_ack = None
        if from_webrtc:
            self._pending = "phone-solicited"
            self._before = (self.phone.local_sdp, self.phone.offered_direction)
            return self.phone.offer(self.phone.offered_direction)
        self._pending = "webrtc-solicited"
        current = self.webrtc_sdp or self.webrtc.local_sdp
        return self._webrtc_description(audio_direction(current))

    def reanswer(self, body: bytes) -> bytes:
        """The answer to a later offer, for the side that made it (or, when that side
        asked for an offer, our offer to it)."""
        pending, self._pending = self._pending, None
        direction = audio_direction(body)
        if pending in ("phone", "phone-solicited"):
            try:
                self.phone.receive_answer(body)
            except RemoteProtocolError as exc:
                raise BridgeError(str(exc)) from None
            self._connect_phone()
            if pending == "phone-solicited":
                self._awaiting_ack = "webrtc"
            return self._webrtc_description(direction)
        if pending == "webrtc-solicited":
            self._awaiting_ack = "phone"
            self._before = (self.phone.local_sdp, self.phone.offered_direction)
            return self.phone.offer(direction)
        return self.phone_sdp  # the browser's answer changes nothing on its transport

    @property
    def awaiting_ack(self) -> bool:
        """Our last offer went in a 2xx: its answer is in the ACK (RFC 3264 §4)."""
        return self._awaiting_ack is not None

    def ack(self, body: bytes) -> None:
        """The answer in an ACK to our offer in a 2xx. The other side answered already,
        so the ACK reaches it without SDP; the browser's answer changes nothing."""
        if self._awaiting_ack == "phone" and body != self._ack_seen:
            self._ack_seen = body
            try:
                self.phone.receive_answer(body)
            except RemoteProtocolError as exc:
                raise BridgeError(str(exc)) from None
            self._connect_phone()

    def refused(self) -> None:
        """The later offer was refused (a 488, a 491 glare): RFC 3264 §8 and RFC 3261
        §14.1, the session stays as it was, so our offer to the phone is forgotten."""
        if self._pending in ("phone", "phone-solicited") and self._before is not None:
            self.phone.restore(*self._before)
        self._pending = self._before = None

    def _webrtc_description(self, direction: Direction) -> bytes:
        """Our description for the WebRTC side again, with `direction` and the next o=
        version (the same ICE credentials and fingerprint: no restart, RFC 8839 §4.4.1)."""
        sdp = self.webrtc_sdp or self.webrtc.local_sdp
        sdp = with_version(with_direction(sdp, direction), origin_version(sdp) + 1)
        self.webrtc_sdp = sdp
        return sdp.encode()

    # -- audio -----------------------------------------------------------------------------
    def _connect_phone(self) -> None:
        """The phone's stream is negotiated: feed it and listen to it at its codec's rate."""
        session = self.phone.session
        rate = session.sample_rate
        if rate != self._phone_rate:
            self._phone_rate = rate
            # Opus on both sides: the same rate, nothing to resample.
            self._down = _resampler(rate) if rate != RATE else None
            self._up = _resampler(RATE) if rate != RATE else None
            self.to_phone = PcmFifo(limit=rate // 5)
            session.play(CallbackSource(self.to_phone.pull, frame_size=session.frame_size))
            session.record(CallbackSink(self._from_phone))
        session.on_dtmf = self._key_from_phone
        self.phone.start()

    def _from_webrtc(self, samples: Pcm) -> None:
        down = self._down
        if self.closed or not self._phone_rate:
            return  # the phone's codec is not known yet
        if down is None:
            self.to_phone.push(samples)
            return
        for out in down.resample(_frame(samples, RATE)):
            self.to_phone.push(out.to_ndarray().reshape(-1).astype(np.int16))

    def _from_phone(self, samples: Pcm) -> None:
        up = self._up
        if self.closed:
            return
        if up is None:
            self._to_webrtc(np.asarray(samples, dtype=np.int16))
            return
        for out in up.resample(_frame(np.asarray(samples, dtype=np.int16), self._phone_rate)):
            self._to_webrtc(out.to_ndarray().reshape(-1).astype(np.int16))

    def _key_from_phone(self, digit: str) -> None:
        """An RFC 4733 key from the phone (RFC 4733 §2.5): its tones, then a pause."""
        tone = dtmf_tone(digit, duration_ms=KEY_MS, sample_rate=RATE)
        pause = np.zeros(RATE * PAUSE_MS // 1000, dtype=np.int16)
        self._keys = np.concatenate([self._keys, tone, pause])

    def _to_webrtc(self, samples: Pcm) -> None:
        if len(self._keys):
            n = min(len(samples), len(self._keys))
            mixed = samples.astype(np.int32)
            mixed[:n] += self._keys[:n]
            samples = np.clip(mixed, -32768, 32767).astype(np.int16)
            self._keys = self._keys[n:]
        self.webrtc.outgoing.push(samples)

    def last_media(self) -> float:
        """Loop time of the last audio from either side (the opening when none came)."""
        times = [self.opened_at, self.webrtc.last_media, self.phone.session.last_received]
        return max(t for t in times if t is not None)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._accepting is not None:
            self._accepting.cancel()
        await self.phone.close()
        await self.webrtc.close()
