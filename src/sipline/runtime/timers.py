"""Every timer above the transaction core, on the injected clock.

The transaction layer exposes its next deadline; everything above it (the proxy's
Timer C, a user agent's 2xx retransmission and session refresh, registration
refresh, NOTIFY pacing, flood windows) schedules through one `Timers` per endpoint.
A `Timers` keeps a heap of deadlines on the endpoint's `Clock` and arms one loop
handle to the earliest. With a clock that is stepped by hand
(`sipline.testing.FakeClock`), no loop handle is armed: advancing the clock fires
what falls due, in deadline order, so a test of the whole server or user agent
steps time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, runtime_checkable

from sipline.core.clock import Clock

__all__ = ["SteppedClock", "Timer", "Timers"]

T = TypeVar("T")


@runtime_checkable
class SteppedClock(Protocol):
    """A clock that moves only when told to, and fires the timers attached to it."""

    def attach(self, timers: Timers) -> None: ...


# As asyncio's loop does: once more than this many entries are in the heap and over
# half of them are cancelled, the heap is rebuilt without them (a timer re-armed on
# every message, e.g. a refresh pushed back, would otherwise keep its dead entries
# until their deadlines pass).
_MIN_HEAP_TO_COMPACT = 100


class Timer:
    """A scheduled callback; `cancel()` before it fires and it never does."""

    __slots__ = ("_args", "_callback", "_timers", "cancelled", "when")

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[object, ...],
        timers: Timers | None = None,
    ):
        self.when = when
        self._callback: Callable[..., object] | None = callback
        self._args = args
        self._timers = timers  # the heap holding this timer, until it leaves the heap
        self.cancelled = False

    def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        self._callback = None
        self._args = ()
        timers = self._timers
        if timers is not None:
            timers._cancelled += 1
            size = len(timers._heap)
            if size > _MIN_HEAP_TO_COMPACT and 2 * timers._cancelled > size:
                timers._compact()

    def _run(self) -> None:
        callback, args = self._callback, self._args
        self.cancel()
        if callback is not None:
            callback(*args)


class Timers:
    """One heap of timers on `clock`, driven by one loop handle (or by the clock itself)."""

    def __init__(self, clock: Clock, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.clock = clock
        self._loop = loop
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._cancelled = 0  # cancelled timers still in the heap
        self._stepped = isinstance(clock, SteppedClock)
        if isinstance(clock, SteppedClock):
            clock.attach(self)

    def now(self) -> float:
        """Monotonic seconds on the injected clock."""
        return self.clock.monotonic()

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> Timer:
        """Run `callback(*args)` once the clock reads `when` or later."""
        timer = Timer(when, callback, args, self)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if self._armed_for is None or when < self._armed_for:
            self._arm()
        return timer

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> Timer:
        return self.call_at(self.now() + max(0.0, delay), callback, *args)

    def next_deadline(self) -> float | None:
        """The earliest pending deadline, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)[2]._timers = None
            self._cancelled -= 1
        return heap[0][0] if heap else None

    @property
    def heap_size(self) -> int:
        """Entries in the heap, cancelled ones not yet dropped included."""
        return len(self._heap)

    def run_due(self) -> int:
        """Fire every timer due by now, in deadline order; returns how many fired."""
        now = self.now()
        fired = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            timer._timers = None
            if timer.cancelled:
                self._cancelled -= 1
            else:
                timer._run()
                fired += 1
        self._arm()
        return fired

    async def sleep(self, delay: float) -> None:
        """Wait `delay` seconds on the injected clock."""
        done = self._get_loop().create_future()
        timer = self.call_later(delay, _resolve, done)
        try:
            await done
        finally:
            timer.cancel()

    async def wait_for(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        """`asyncio.wait_for` on the injected clock: raises TimeoutError after `timeout`."""
        task = asyncio.ensure_future(awaitable)
        if timeout is None:
            return await task
        expired: list[bool] = []
        timer = self.call_later(timeout, _expire, task, expired)
        try:
            return await task
        except asyncio.CancelledError:
            # Ours, not the caller's: a timeout. (`task.cancelled()` cannot tell: a
            # cancelled gather() ends with CancelledError as its exception.)
            if expired and not _cancelling():
                raise TimeoutError from None
            raise
        finally:
            if not timer.cancelled:
                timer.cancel()
            if not task.done():
                task.cancel()

    def close(self) -> None:
        """Drop every pending timer."""
        for _, _, timer in self._heap:
            timer._timers = None
            timer.cancel()
        self._heap.clear()
        self._cancelled = 0
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_for = None

    def _compact(self) -> None:
        """Drop the cancelled entries (see `_MIN_HEAP_TO_COMPACT`)."""
        heap = self._heap
        # In place: `run_due` may be iterating over this very list.
        heap[:] = [entry for entry in heap if not entry[2].cancelled]
        heapq.heapify(heap)
        self._cancelled = 0

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _arm(self) -> None:
        deadline = self.next_deadline()
        if deadline == self._armed_for:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_for = deadline
        if deadline is None or self._stepped:
            return
        loop = self._get_loop()
        self._handle = loop.call_at(loop.time() + (deadline - self.now()), self._on_handle)

    def _on_handle(self) -> None:
        self._handle = None
        self._armed_for = None
        self.run_due()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _expire(task: asyncio.Future[object], expired: list[bool]) -> None:
    if not task.done():
        expired.append(True)
        task.cancel()


def _cancelling() -> bool:
    """Whether the task running this code is itself being cancelled from outside."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
