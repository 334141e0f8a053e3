"""A call's media: the SDP offer/answer (RFC 3264) in front of one `MediaSession`.

`CallMedia` builds our offers and answers from `MediaOptions` (codecs in order of
preference, telephone-events, SRTP with SDES keys), keeps the o= line versioned across
re-offers (RFC 3264 §8), and turns each completed exchange into the session's
`StreamConfig`: where to send, which payload type, which direction (hold), which keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sipline.core.clock import Entropy
from sipline.core.errors import RemoteProtocolError
from sipline.media.codecs.opus import register_opus
from sipline.media.codecs.registry import codec_by_name
from sipline.media.srtp import (
    CryptoAttribute,
    SrtpContext,
    new_crypto,
    select_crypto,
    srtp_available,
)
from sipline.media_io.session import MediaSession, MediaStats, StreamConfig
from sipline.sdp import (
    Attribute,
    Capabilities,
    Codec,
    Direction,
    MediaCapability,
    NegotiatedStream,
    SdpError,
    SessionDescription,
    create_answer,
    create_offer,
    negotiate,
    next_version,
    parse,
    serialize,
)

__all__ = ["AddressMapper", "CallMedia", "MediaOptions"]

Address = tuple[str, int]
# Where our media socket is reachable from outside (a NAT mapping, a relay): the SDP
# then carries that address; RTCP is expected on its port + 1.
AddressMapper = Callable[[Address], Awaitable[Address]]

_SRTP_MODES = ("off", "optional", "mandatory")


@dataclass(frozen=True, slots=True)
class MediaOptions:
    """Media policy of a user agent.

    `srtp`: "off" (RTP/AVP), "optional" (RTP/AVP offers carrying a=crypto: SRTP when the
    answer has a key) or "mandatory" (RTP/SAVP). Incoming SRTP offers are taken
    whenever libsrtp is installed and `srtp` is not "off".
    """

    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    srtp: str = "off"
    ptime_ms: int = 20
    telephone_event: bool = True
    port_range: tuple[int, int] = (16384, 32766)
    symmetric: bool = True
    jitter_min_ms: float = 20.0
    jitter_max_ms: float = 200.0
    rtcp_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if self.srtp not in _SRTP_MODES:
            raise ValueError(f"srtp: must be one of {', '.join(_SRTP_MODES)}, not {self.srtp!r}")
        if not self.codecs:
            raise ValueError("codecs: at least one codec is needed")


class MediaRejectedError(RemoteProtocolError):
    """An offer we cannot take: answered with 488 (RFC 3261 §21.4.26)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Not Acceptable Here ({reason})", 488)


def _codec(name: str) -> Codec:
    if name.lower() == "opus":
        register_opus()
    info = codec_by_name(name)
    if info is None:
        raise ValueError(f"codec {name} is not available (opus needs the [opus] extra)")
    return Codec(info.name, info.clock_rate, info.channels if info.channels > 1 else None)


class CallMedia:
    """One audio stream of one call (see the module docstring)."""

    def __init__(
        self,
        options: MediaOptions,
        *,
        entropy: Entropy,
        bind_host: str,
        advertise_host: str,
        username: str = "-",
        mapper: AddressMapper | None = None,
    ) -> None:
        self.options = options
        self.entropy = entropy
        self.bind_host = bind_host
        self.advertise: Address = (advertise_host, 0)
        self.username = username or "-"
        self.mapper = mapper
        self.session = MediaSession(
            entropy=entropy,
            symmetric=options.symmetric,
            jitter_min_ms=options.jitter_min_ms,
            jitter_max_ms=options.jitter_max_ms,
            rtcp_interval_s=options.rtcp_interval_s,
        )
        self.codecs = [_codec(name) for name in options.codecs]
        self._session_id = str(int.from_bytes(entropy.random_bytes(4), "big"))
        self.local_sdp: SessionDescription | None = None
        self.remote_sdp: SessionDescription | None = None
        self.stream: NegotiatedStream | None = None
        self._crypto: CryptoAttribute | None = None
        self._srtp: SrtpContext | None = None  # kept across re-offers (see _apply)
        self._direction = Direction.SENDRECV
        self._opened = False

    async def open(self) -> None:
        if self._opened:
            return
        local = await self.session.open(self.bind_host, port_range=self.options.port_range)
        self.advertise = (self.advertise[0], local[1])
        if self.mapper is not None:
            self.advertise = await self.mapper((self.advertise[0], local[1]))
        self._opened = True

    # -- building SDP ---------------------------------------------------------------------
    def _capabilities(self, direction: Direction, proto: str) -> Capabilities:
        host, port = self.advertise
        return Capabilities(
            address=host,
            username=self.username,
            session_id=self._session_id,
            session_name="sipline",
            media=[
                MediaCapability(
                    "audio",
                    port,
                    self.codecs,
                    proto=proto,
                    direction=direction,
                    telephone_event=self.options.telephone_event,
                    ptime_ms=self.options.ptime_ms,
                )
            ],
        )

    def _stamp(self, sd: SessionDescription) -> bytes:
        sd = next_version(self.local_sdp, sd)
        self.local_sdp = sd
        return serialize(sd)

    def _add_crypto(self, sd: SessionDescription, crypto: CryptoAttribute) -> None:
        sd.media[0].attributes.append(Attribute("crypto", crypto.value()))

    def offer(self, direction: Direction = Direction.SENDRECV) -> bytes:
        """Our offer (a first one, or a re-offer: hold, resume, refresh)."""
        self._direction = direction
        mode = self.options.srtp
        if mode != "off" and not srtp_available():
            raise ValueError("srtp: needs the pylibsrtp package (pip install sipline[srtp])")
        proto = "RTP/SAVP" if mode == "mandatory" else "RTP/AVP"
        sd = create_offer(self._capabilities(direction, proto))
        if mode != "off":
            if self._crypto is None:
                self._crypto = new_crypto(1, entropy=self.entropy)
            self._add_crypto(sd, self._crypto)
        return self._stamp(sd)

    def answer(self, body: bytes, direction: Direction = Direction.SENDRECV) -> bytes:
        """Answer a remote offer and apply it; `MediaRejectedError` (488) when nothing fits,
        `RemoteProtocolError` (400) for an SDP that does not parse."""
        offer = _parse(body)
        if not offer.media:
            raise MediaRejectedError("no media in the offer")
        offered = offer.media[0]
        proto = offered.proto.upper()
        crypto = select_crypto(offered.attribute_values("crypto"))
        use_srtp = crypto is not None and self.options.srtp != "off" and srtp_available()
        if proto == "RTP/SAVP" and not use_srtp:
            raise MediaRejectedError("SRTP offered and not enabled here")
        if proto not in ("RTP/AVP", "RTP/SAVP"):
            raise MediaRejectedError(f"transport {offered.proto}")
        if self.options.srtp == "mandatory" and not use_srtp:
            raise MediaRejectedError("SRTP is required here")
        answer = create_answer(offer, self._capabilities(direction, offered.proto))
        if answer.media[0].is_rejected:
            raise MediaRejectedError("no codec in common")
        if use_srtp and crypto is not None:
            if self._crypto is None or self._crypto.suite != crypto.suite:
                self._crypto = new_crypto(crypto.tag, entropy=self.entropy, suite=crypto.suite)
            self._crypto = CryptoAttribute(crypto.tag, crypto.suite, self._crypto.key)
            self._add_crypto(answer, self._crypto)
        else:
            self._crypto = None
        self._direction = direction
        local = self.local_sdp = next_version(self.local_sdp, answer)
        self._apply(local, offer, crypto if use_srtp else None)
        return serialize(local)

    def receive_answer(self, body: bytes) -> None:
        """Apply the answer to our last offer (RFC 3264 §7)."""
        if self.local_sdp is None:
            raise RemoteProtocolError("SDP answer without an offer")
        answer = _parse(body)
        crypto = None
        if self._crypto is not None and answer.media:
            crypto = select_crypto(answer.media[0].attribute_values("crypto"))
            if crypto is None and self.options.srtp == "mandatory":
                raise MediaRejectedError("the answer has no usable SRTP key")
        self._apply(self.local_sdp, answer, crypto)

    def _apply(
        self, local: SessionDescription, remote: SessionDescription, crypto: CryptoAttribute | None
    ) -> None:
        try:
            streams = negotiate(local, remote)
        except SdpError as exc:
            raise RemoteProtocolError(f"Bad SDP ({exc.reason})") from None
        self.remote_sdp = remote
        stream = streams[0] if streams else None
        self.stream = stream
        if stream is None or not stream.accepted or stream.codec is None:
            self.session.configure(StreamConfig(None, send=False, receive=False))
            return
        codec = stream.codec
        remote_rtp: Address | None = None
        if stream.remote_address and stream.remote_address not in ("0.0.0.0", "::"):
            remote_rtp = (stream.remote_address, stream.remote_port)
        remote_rtcp = None
        if remote_rtp is not None and stream.remote_rtcp_address:
            remote_rtcp = (stream.remote_rtcp_address, stream.remote_rtcp_port)
        srtp = None
        if crypto is not None and self._crypto is not None:
            # RFC 4568 §7.1.4 / RFC 3711 §9.2: a key kept across this re-negotiation
            # keeps its crypto context (indices go on); only a changed key starts anew.
            srtp = SrtpContext(self._crypto, crypto, previous=self._srtp)
            self._srtp = srtp
        ptime = int(stream.ptime_ms) if stream.ptime_ms else self.options.ptime_ms
        self.session.configure(
            StreamConfig(
                remote_rtp,
                payload_type=codec.payload_type,
                codec=codec.encoding_name,
                remote_rtcp=remote_rtcp,
                ptime_ms=ptime if ptime in (10, 20, 30, 40, 60) else self.options.ptime_ms,
                dtmf_payload_type=(
                    stream.telephone_event.payload_type if stream.telephone_event else None
                ),
                send=stream.direction.sends,
                receive=stream.direction.receives,
                srtp=srtp,
            )
        )

    # -- state -----------------------------------------------------------------------------
    @property
    def direction(self) -> Direction:
        """What we do on the stream now (SENDONLY: we hold the peer, RECVONLY: held)."""
        return self.stream.direction if self.stream is not None else Direction.INACTIVE

    @property
    def offered_direction(self) -> Direction:
        """The direction of our last offer or answer (what a refresh offers again)."""
        return self._direction

    def restore(self, local_sdp: SessionDescription | None, direction: Direction) -> None:
        """Forget an offer the peer refused (§14.1: the session stays as it was)."""
        self.local_sdp = local_sdp
        self._direction = direction

    @property
    def remote_hold(self) -> bool:
        """The peer's last SDP asks us not to send (sendonly, inactive, c=0.0.0.0)."""
        return self.stream is not None and self.stream.remote_hold

    @property
    def secure(self) -> bool:
        return self.session.config.srtp is not None

    @property
    def codec(self) -> str | None:
        stream = self.stream
        return stream.codec.encoding_name if stream is not None and stream.codec else None

    def start(self) -> None:
        self.session.start()

    def stats(self) -> MediaStats:
        return self.session.stats()

    async def close(self) -> None:
        await self.session.close()


def _parse(body: bytes) -> SessionDescription:
    try:
        return parse(body)
    except SdpError as exc:
        raise RemoteProtocolError(f"Bad SDP ({exc.reason})") from None
