"""The 2xx responses a call sent to INVITEs, kept alive until their ACKs (RFC 3261
§13.3.1.4). The rules are the sans-I/O `sipline.core.invite_usage.AnswerRetransmission`;
this only carries out its actions on the endpoint's timers: one timer per 2xx, re-armed
to the machine's next deadline after every call into it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from sipline.core.errors import LocalProtocolError
from sipline.core.invite_usage import AnswerRetransmission, UsageAction
from sipline.core.message import Response
from sipline.core.timers import TimerConfig
from sipline.runtime.endpoint import ServerTransaction
from sipline.runtime.timers import Timer, Timers

__all__ = ["AnswerKeeper"]


@dataclass(slots=True)
class _Kept:
    usage: AnswerRetransmission
    st: ServerTransaction
    response: Response
    timer: Timer | None = None


class AnswerKeeper:
    """Every unacknowledged 2xx of one call, by its INVITE's CSeq."""

    def __init__(self, timers: Timers, config: TimerConfig, on_no_ack: Callable[[], None]):
        self._timers = timers
        self._config = config
        self._on_no_ack = on_no_ack
        self._kept: dict[int, _Kept] = {}

    def keep(self, st: ServerTransaction, response: Response) -> None:
        """`response` (a 2xx) was just sent on `st`: retransmit it until its ACK."""
        usage = AnswerRetransmission(
            reliable=st.inbound.transport != "UDP", timers=self._config, now=self._timers.now()
        )
        kept = _Kept(usage, st, response)
        self._kept[st.request.cseq.seq] = kept
        self._arm(kept)

    def ack(self, cseq: int) -> bool:
        """An ACK for INVITE `cseq` came: True when it is the first for a 2xx we keep."""
        kept = self._kept.pop(cseq, None)
        if kept is None:
            return False  # a retransmitted ACK, or one for a 2xx we did not send
        actions = kept.usage.receive_ack(now=self._timers.now())
        self._disarm(kept)
        return UsageAction.PASS_ACK in actions

    @property
    def pending(self) -> int:
        """How many 2xx still wait for their ACK."""
        return len(self._kept)

    def stop(self) -> None:
        for kept in self._kept.values():
            kept.usage.stop(now=self._timers.now())
            self._disarm(kept)
        self._kept.clear()

    def _fire(self, cseq: int) -> None:
        kept = self._kept.get(cseq)
        if kept is None:
            return
        kept.timer = None
        for action in kept.usage.handle_timers(now=self._timers.now()):
            if action is UsageAction.RESEND_2XX:
                with contextlib.suppress(LocalProtocolError):
                    kept.st.send(kept.response)
            elif action is UsageAction.END_WITH_BYE:
                del self._kept[cseq]
                self._on_no_ack()
        if cseq in self._kept:
            self._arm(kept)

    def _arm(self, kept: _Kept) -> None:
        self._disarm(kept)
        deadline = kept.usage.next_deadline()
        if deadline is not None:
            kept.timer = self._timers.call_at(deadline, self._fire, kept.st.request.cseq.seq)

    @staticmethod
    def _disarm(kept: _Kept) -> None:
        if kept.timer is not None:
            kept.timer.cancel()
            kept.timer = None
