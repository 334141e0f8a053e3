"""When a stream's frames fall due, sans-I/O: one frame per packetisation interval
(RFC 3550 §5.1, RFC 3551 §4.2), whatever the ticks that drive it.

A session is ticked on a shared grid (`sipline.media_io.pacing`); on each tick
`SendSchedule.due(now, step)` says how many frames to send now. A frame sent a whole
interval after its time counts as late. After a stall longer than `MAX_CATCH_UP`
intervals the frames missed are skipped rather than sent in a burst: the caller moves
the RTP timestamp past them, so the receiver sees a gap and keeps time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_CATCH_UP", "SendSchedule"]

# A stall longer than this many periods is skipped rather than caught up in a burst.
MAX_CATCH_UP = 3
# A tick this close before a frame's time sends it (the grid's float rounding).
_EARLY_S = 1e-4
_ONE_FRAME = (0, 1)


@dataclass(slots=True)
class SendSchedule:
    """The time the next frame is due, and the frames sent late or skipped so far."""

    next_due: float = 0.0
    late: int = 0
    skipped: int = 0

    def due(self, now: float, step: float) -> tuple[int, int]:
        """At `now`, for frames `step` seconds apart: (frames to skip, frames to send)."""
        next_due = self.next_due
        if next_due <= now + _EARLY_S < next_due + step:  # the usual tick: one, on time
            self.next_due = next_due + step
            return _ONE_FRAME
        missed = 0
        if self.next_due < now - MAX_CATCH_UP * step:
            missed = int((now - self.next_due) // step)
            self.skipped += missed
            self.next_due += missed * step
        send = 0
        while self.next_due <= now + _EARLY_S:
            if now - self.next_due >= step:
                self.late += 1
            self.next_due += step
            send += 1
        return missed, send

    def resume(self, now: float) -> None:
        """Sending starts again (after hold): the next frame is due now, not in the past."""
        self.next_due = max(self.next_due, now)
