"""The bridges of one server process, as the proxy's `MediaAnchor`
(sipline.server.proxy.anchoring): which call and branch each belongs to, the SDP of
their requests and responses, their end.

A bridge is made for each branch of a new INVITE that `plan` says needs one, and kept
by Call-ID. The branch that answers keeps its bridge and the others close theirs when
their final response passes (a CANCEL ends as 487 there). A BYE from either side
closes the call's bridges, and a bridge that carried no audio either way for
`idle_s` is reaped, so a BYE that never passed here (a worker restarted, a caller
gone) costs nothing for long. aiortc is imported with the first bridge only.

In the dialog, an offer from either side (re-INVITE, UPDATE) is relayed through the
bridge (`Bridge.reoffer`); a re-INVITE without one gets the bridge's offers
(`Bridge.solicited_offer`), the answer in its ACK taken here and the ACK sent on bare.
A 2xx retransmitted outside its transaction gets the rewritten answer again, when it
comes from the branch that answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sipline.core.clock import Entropy
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.runtime.endpoint import Endpoint
from sipline.server.bridge.plan import Role, plan, sdp_kind

if TYPE_CHECKING:
    from sipline.server.bridge.bridge import Bridge

__all__ = ["MediaBridges", "media_bridges"]

log = logging.getLogger("sipline.bridge")

# Bridges open at once in one process: each is a few sockets and, while audio flows,
# some 10% of a core (benchmarks/bridge_cpu.py).
MAX_BRIDGES = 200
_WILDCARDS = ("0.0.0.0", "::")


@dataclass(slots=True)
class _Call:
    caller_tag: str
    invite_cseq: int
    bridges: list[Bridge] = field(default_factory=list)
    answered: Bridge | None = None
    callee_tag: str | None = None  # the To tag of the 2xx that answered


class _FirstLeg:
    """A new call's branch through a bridge."""

    def __init__(self, owner: MediaBridges, call_id: str, call: _Call, bridge: Bridge, body: bytes):
        self.owner = owner
        self.call_id = call_id
        self.call = call
        self.bridge = bridge
        self.body = body

    def response(self, response: Response) -> None:
        bridge = self.bridge
        if response.status >= 300:
            self.owner.drop(self.call_id, bridge)
            return
        if response.status > 100 and sdp_kind(response.body) is not None:
            self.owner.rewrite_answer(self.call_id, bridge, response)
        if 200 <= response.status < 300:
            self.call.callee_tag = response.to.tag
            self.owner.answered(self.call_id, self.call, bridge)


class _LaterOffer:
    """A re-INVITE or UPDATE with an offer, in a bridged dialog."""

    def __init__(self, owner: MediaBridges, call_id: str, bridge: Bridge, body: bytes):
        self.owner = owner
        self.call_id = call_id
        self.bridge = bridge
        self.body = body

    def response(self, response: Response) -> None:
        if response.status >= 300:
            self.bridge.refused()
        elif 200 <= response.status < 300 and sdp_kind(response.body) is not None:
            try:
                response.body = self.bridge.reanswer(response.body)
            except Exception as exc:
                log.info("bridge %s: answer not taken: %s", self.call_id, exc)


class MediaBridges:
    """See the module docstring. `host`: the address the bridge's sockets bind, and its
    ICE host candidate (a wildcard: every interface's); `advertise`: the phone side's
    c= address. Past `max_bridges` open at once, offers pass untouched (and the log
    says so) rather than costing more sockets and CPU."""

    def __init__(
        self,
        *,
        host: str,
        entropy: Entropy,
        advertise: str | None = None,
        idle_s: float = 60.0,
        max_bridges: int = MAX_BRIDGES,
    ) -> None:
        self.host = host
        self.advertise = advertise or host
        self.max_bridges = max_bridges
        self.entropy = entropy
        self.idle_s = idle_s
        self.calls: dict[str, _Call] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._addressed = False
        self.opened = 0  # bridges made since start (for tests and the status line)

    def __len__(self) -> int:
        return sum(len(c.bridges) for c in self.calls.values())

    # -- MediaAnchor ---------------------------------------------------------------------
    async def anchor(
        self, request: Request, body: bytes, *, webrtc_target: bool
    ) -> _FirstLeg | _LaterOffer | None:
        try:
            call_id = request.call_id
            to_tag = request.to.tag
        except RemoteProtocolError:
            return None
        if to_tag is None:
            if request.method != "INVITE":
                return None
            role = plan(body, webrtc_target=webrtc_target)
            return None if role is None else await self._open(request, call_id, role, body)
        call = self.calls.get(call_id)
        if call is None:
            return None
        if request.method == "BYE":
            self.end(call_id)
            return None
        bridge = call.answered
        if bridge is None:
            return None
        from_caller = request.from_.tag == call.caller_tag
        from_webrtc = from_caller == (bridge.role is Role.WEBRTC_OFFERS)
        try:
            if sdp_kind(body) is not None:
                out = bridge.reoffer(body, from_webrtc=from_webrtc)
            elif request.method == "INVITE" and not body:
                out = bridge.solicited_offer(from_webrtc=from_webrtc)
            else:
                return None
        except Exception as exc:
            log.info("bridge %s: offer not taken: %s", call_id, exc)
            return None
        return _LaterOffer(self, call_id, bridge, out)

    def ack(self, request: Request) -> None:
        """An ACK answering our offer in a 2xx: the answer is ours, the ACK goes on
        without it (the other side answered in its 2xx already)."""
        try:
            call = self.calls.get(request.call_id)
        except RemoteProtocolError:
            return
        bridge = call.answered if call is not None else None
        if bridge is None or not bridge.awaiting_ack or sdp_kind(request.body) is None:
            return
        try:
            bridge.ack(request.body)
        except Exception as exc:
            log.info("bridge %s: answer in the ACK not taken: %s", request.call_id, exc)
        request.body = b""
        request.headers.remove("Content-Type")

    def stray_response(self, response: Response) -> None:
        try:
            call = self.calls.get(response.call_id)
            cseq = response.cseq
            to_tag = response.to.tag
        except RemoteProtocolError:
            return
        if call is None or call.answered is None or sdp_kind(response.body) is None:
            return
        # Only the answering branch's (§16.7 step 10: another fork's late 2xx is not ours
        # to take: its SDP passes untouched to a caller that will hang it up).
        if cseq.method == "INVITE" and cseq.seq == call.invite_cseq and to_tag == call.callee_tag:
            self.rewrite_answer(response.call_id, call.answered, response)

    # -- bridges ---------------------------------------------------------------------------
    async def _open(
        self, request: Request, call_id: str, role: Role, body: bytes
    ) -> _FirstLeg | None:
        # aiortc is loaded with the first bridge.
        from sipline.server.bridge.bridge import Bridge  # noqa: PLC0415
        from sipline.server.bridge.webrtc import use_media_address  # noqa: PLC0415

        if not self._addressed and self.host not in _WILDCARDS:
            use_media_address([self.host])  # ICE host candidates: our media address only
            self._addressed = True

        if len(self) >= self.max_bridges:
            log.warning("bridge %s: %d bridges open already; not bridged", call_id, len(self))
            return None
        call = self.calls.get(call_id)
        if call is None:
            call = _Call(request.from_.tag or "", request.cseq.seq)
            self.calls[call_id] = call
        bridge = Bridge(role, entropy=self.entropy, host=self.host, advertise=self.advertise)
        call.bridges.append(bridge)
        try:
            out = await bridge.open(body)
        except Exception as exc:
            log.info("bridge %s: offer not taken: %s", call_id, exc)
            self.drop(call_id, bridge)
            return None
        self.opened += 1
        self._start_reaper()
        log.info("bridge %s: %s", call_id, role.value)
        return _FirstLeg(self, call_id, call, bridge, out)

    def rewrite_answer(self, call_id: str, bridge: Bridge, response: Response) -> None:
        try:
            response.body = bridge.answer(response.body)
        except Exception as exc:
            log.info("bridge %s: answer not taken: %s", call_id, exc)

    def answered(self, call_id: str, call: _Call, bridge: Bridge) -> None:
        if call.answered is bridge:
            return
        call.answered = bridge
        for other in list(call.bridges):
            if other is not bridge:
                self.drop(call_id, other)  # RFC 3261 §16.7 step 10: the other forks end

    def drop(self, call_id: str, bridge: Bridge) -> None:
        call = self.calls.get(call_id)
        if call is not None and bridge in call.bridges:
            call.bridges.remove(bridge)
            if call.answered is bridge:
                call.answered = None
            if not call.bridges:
                del self.calls[call_id]
        self._spawn(bridge.close())

    def end(self, call_id: str) -> None:
        """The call is over (a BYE): close its bridges."""
        call = self.calls.pop(call_id, None)
        for bridge in call.bridges if call is not None else ():
            self._spawn(bridge.close())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the reaper ------------------------------------------------------------------------
    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap())

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        while self.calls:
            await asyncio.sleep(min(10.0, self.idle_s / 4))
            now = loop.time()
            for call_id, call in list(self.calls.items()):
                for bridge in list(call.bridges):
                    if now - bridge.last_media() > self.idle_s:
                        log.info("bridge %s: no media for %.0f s, closed", call_id, self.idle_s)
                        self.drop(call_id, bridge)

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for call_id in list(self.calls):
            self.end(call_id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def media_bridges(endpoint: Endpoint) -> MediaBridges:
    """The bridges of a server process, on its first listener's address (named as it
    advertises it). The server runs them with its media services (`[media] enabled`)."""
    local = endpoint.local_address()
    return MediaBridges(host=local.host, advertise=local.advertise, entropy=endpoint.entropy)
