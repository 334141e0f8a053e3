"""The channel between the worker processes of one node (docs/architecture.md "Workers").

A flow belongs to the process that holds its socket: a TCP or TLS connection a phone
opened is held by the worker that accepted it, and no other process can write to it.
The supervisor binds one AF_UNIX datagram socket per worker in a private directory
(mode 0700), named by the worker's index; each worker reads its own and writes to the
others by name. A datagram is one JSON header line and the SIP message's bytes:

- `send`: send these bytes on the stream flow (transport, host, port) you hold (a
  request toward a phone whose connection the addressee accepted). When that flow is
  gone, `fail` comes back with the same `id` and the sender's transaction fails as on
  a refused connection (the proxy answers 430 Flow Failed, RFC 5626 §5.3);
- `recv`: this message reached me and is yours (a response whose branch names you,
  runtime/siblings.py): process it as if it had arrived at you from `remote` on
  `local`.

Writes never block. Linux keeps only `net.unix.max_dgram_qlen` (10 by default)
datagrams waiting at a socket, far fewer than one burst of calls hands over: a datagram
the addressee cannot take now waits in this worker's queue for it (in order, bounded
by `_MAX_QUEUED`), flushed as soon as the addressee has read; past the bound, or when
the addressee is gone, it is dropped and, for a `send`, reported to the sender at once
(its transaction then fails or retransmits).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections import deque
from typing import Final

from sipline.transport.base import (
    FLOW_FAILED,
    ErrorCallback,
    MessageCallback,
    Source,
    Target,
    TransportError,
    report_send_error,
)
from sipline.transport.layer import TransportLayer

__all__ = ["FLOW_FAILED", "WorkerChannel", "channel_socket"]

log = logging.getLogger("sipline.transport")

BUFFER_BYTES: Final = 4 * 1024 * 1024
_MAX_PENDING: Final = 4096  # sends awaiting a possible `fail`: the oldest are forgotten
_MAX_DATAGRAM: Final = 256 * 1024
_MAX_QUEUED: Final = 10_000  # datagrams waiting for busy siblings, all of them together
_RETRY_S: Final = 0.001  # how soon a full sibling is tried again


def channel_socket(directory: str, index: int) -> socket.socket:
    """Worker `index`'s socket, bound at `directory`/`index` (by the supervisor, which
    keeps it across the worker's restarts)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, BUFFER_BYTES)
        sock.bind(os.path.join(directory, str(index)))
    except BaseException:
        sock.close()
        raise
    return sock


class WorkerChannel:
    """One worker's end: `forward` (a `FlowRelay` for the transport layer) and
    `hand_over` (a `HandOver` for runtime/siblings.py)."""

    def __init__(
        self,
        index: int,
        sock: socket.socket,
        directory: str,
        layer: TransportLayer,
        on_received: MessageCallback,
    ) -> None:
        self.index = index
        self.sock = sock
        self.directory = directory
        self.layer = layer
        self.on_received = on_received  # a handed-over message, into the endpoint
        self._pending: dict[int, tuple[ErrorCallback | None, Target]] = {}
        self._next_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: dict[int, deque[bytes]] = {}  # worker -> datagrams it could not take
        self._queued_count = 0
        self._flush_handle: asyncio.TimerHandle | None = None

    def open(self) -> None:
        self.sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()

    # -- sending ----------------------------------------------------------------------------
    def forward(self, data: bytes, target: Target, on_error: ErrorCallback | None) -> bool:
        worker = target.worker
        if worker is None or worker == self.index:
            return False
        self._next_id += 1
        ident = self._next_id
        header = {"op": "send", "from": self.index, "id": ident}
        header.update(t=target.transport, h=target.host, p=target.port)
        if self._write(worker, header, data):
            self.layer.stats.to_siblings += 1
            self._pending[ident] = (on_error, target)
            if len(self._pending) > _MAX_PENDING:
                del self._pending[next(iter(self._pending))]
        else:
            error = TransportError(f"{FLOW_FAILED}: worker {worker} unreachable", target)
            report_send_error(error, on_error, self.layer.stats)
        return True

    def hand_over(self, worker: int, data: bytes, source: Source) -> None:
        header = {"op": "recv", "from": self.index, "t": source.transport}
        header.update(r=list(source.remote), l=list(source.local))
        if self._write(worker, header, data):
            self.layer.stats.to_siblings += 1

    def _write(self, worker: int, header: dict[str, object], data: bytes) -> bool:
        payload = json.dumps(header, separators=(",", ":")).encode() + b"\n" + data
        waiting = self._queued.get(worker)
        if waiting:  # keep the order: behind what already waits for that worker
            return self._queue(worker, payload)
        try:
            self.sock.sendto(payload, os.path.join(self.directory, str(worker)))
        except (BlockingIOError, InterruptedError):  # its queue is full for now
            return self._queue(worker, payload)
        except OSError as exc:  # gone (restarting), too big: dropped
            log.debug("worker channel: cannot reach worker %d: %s", worker, exc)
            return False
        return True

    def _queue(self, worker: int, payload: bytes) -> bool:
        if self._queued_count >= _MAX_QUEUED or self._loop is None:
            log.debug("worker channel: worker %d busy, queue full: dropped", worker)
            return False
        self._queued.setdefault(worker, deque()).append(payload)
        self._queued_count += 1
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_later(_RETRY_S, self._flush)
        return True

    def _flush(self) -> None:
        """Send what waits, in order, to each sibling until it is full again."""
        self._flush_handle = None
        for worker, waiting in list(self._queued.items()):
            path = os.path.join(self.directory, str(worker))
            while waiting:
                try:
                    self.sock.sendto(waiting[0], path)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # gone: what waits for it is dropped
                    log.debug("worker channel: cannot reach worker %d: %s", worker, exc)
                    self._queued_count -= len(waiting)
                    waiting.clear()
                    break
                waiting.popleft()
                self._queued_count -= 1
            if not waiting:
                del self._queued[worker]
        if self._queued and self._loop is not None:
            self._flush_handle = self._loop.call_later(_RETRY_S, self._flush)

    # -- receiving --------------------------------------------------------------------------
    def _readable(self) -> None:
        for _ in range(64):  # a bounded batch, then the loop's other work
            try:
                payload = self.sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("worker channel: %s", exc)
                return
            try:
                self._dispatch(payload)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("worker channel: a damaged message: %s", exc)

    def _dispatch(self, payload: bytes) -> None:
        line, _, data = payload.partition(b"\n")
        header = json.loads(line)
        op = header["op"]
        if op == "send":
            self._send_on_flow(header, data)
        elif op == "recv":
            remote, local = header["r"], header["l"]
            source = Source(str(header["t"]), (remote[0], int(remote[1])), (local[0], local[1]))
            self.on_received(data, source)
        elif op == "fail":
            on_error, target = self._pending.pop(int(header["id"]), (None, None))
            if target is not None:
                error = TransportError(str(header.get("why", FLOW_FAILED)), target)
                report_send_error(error, on_error, self.layer.stats)

    def _send_on_flow(self, header: dict[str, object], data: bytes) -> None:
        sender, ident = int(str(header["from"])), header["id"]
        target = Target(str(header["t"]), str(header["h"]), int(str(header["p"])))
        connection = self.layer.connection_for(target)

        def failed(why: str) -> None:
            self._write(sender, {"op": "fail", "id": ident, "why": why}, b"")

        if connection is None or connection.is_closed:
            failed(FLOW_FAILED)  # RFC 5626 §5.3: the flow is gone
            return
        connection.send(data, lambda e: failed(f"{FLOW_FAILED}: {e.reason}"))
