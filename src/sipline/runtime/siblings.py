"""A worker process among the other workers of its node: the branch mark.

With `sipline serve --workers N` every worker sends from the public listener and
names it in its Via (no port of its own that a firewall in front of the server would
not expect), so the kernel may give the response to a request one worker sent to
another worker: SO_REUSEPORT hashes a datagram by its addresses, and a phone answers
on the TCP connection it opened, which belongs to the worker that accepted it. Every
branch a worker makes ends with its mark, `~` and its index (a `token` character the
random part never holds, RFC 3261 §25.1); a response whose top Via branch names
another worker is handed to that worker over the node's channel
(`sipline.transport.channel`), which processes it as if it had arrived there.

A dialog whose state lives in one worker (a call whose media that worker bridges)
has that worker named in our Record-Route (`;pin=INDEX`): a request of the dialog
that reaches another worker over UDP is handed to it the same way. (Over a stream
the request stays where its connection is: a stream's answer must leave from there.)
"""

from __future__ import annotations

import re
import socket
from typing import Final, Protocol

from sipline.core.builders import MAGIC_COOKIE
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Message, Request
from sipline.transport import Source, TransportLayer
from sipline.transport.channel import WorkerChannel

__all__ = ["MARK", "PIN", "HandOver", "Siblings", "branch_worker", "join_siblings", "pinned_worker"]

MARK: Final = "~"
PIN: Final = "pin"  # our Record-Route URI parameter naming the worker a dialog lives in
_PINNED = re.compile(r";pin=(\d{1,3})(?=[;>?])")


class HandOver(Protocol):
    """What carries a message to another worker (`sipline.transport.channel`)."""

    def hand_over(self, worker: int, data: bytes, source: Source) -> None: ...


def branch_worker(branch: str | None) -> int | None:
    """The worker index a branch of ours ends with, or None."""
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        return None
    _, mark, index = branch.rpartition(MARK)
    if not mark or not index.isdigit() or len(index) > 3:
        return None
    return int(index)


def pinned_worker(request: Request) -> int | None:
    """The worker index the request's top Route pins it to (our Record-Route), or None."""
    first = request.headers.get("route")
    if first is None:
        return None
    found = _PINNED.search(first.split(">", 1)[0] + ">")
    return int(found.group(1)) if found else None


class Siblings:
    """This worker's index and the way to the others."""

    __slots__ = ("channel", "count", "index")

    def __init__(self, index: int, count: int, channel: HandOver) -> None:
        self.index = index
        self.count = count
        self.channel = channel

    @property
    def mark(self) -> str:
        return f"{MARK}{self.index}"

    def hands_over(self, message: Message, data: bytes, source: Source) -> bool:
        """Hand a response to the worker whose branch it carries, or a request to the
        worker its Route pins it to, when that is not us (True: no longer ours)."""
        if isinstance(message, Request):
            owner = pinned_worker(message) if source.transport == "UDP" else None
        else:
            try:
                owner = branch_worker(message.top_via.branch)
            except RemoteProtocolError:
                return False
        if owner is None or owner == self.index or owner >= self.count:
            return False
        self.channel.hand_over(owner, data, source)
        return True


class _Worker(Protocol):
    """What `join_siblings` sets on an endpoint (`runtime.endpoint.Endpoint`)."""

    transports: TransportLayer
    siblings: Siblings | None
    branch_mark: str


def join_siblings(
    endpoint: _Worker, index: int, count: int, sock: socket.socket, directory: str
) -> WorkerChannel:
    """Make `endpoint` worker `index` of `count`: its branches carry its mark, the
    flows and responses of other workers reach them over the channel, and what they
    hand over is received here as if it had arrived here."""
    transports = endpoint.transports
    channel = WorkerChannel(index, sock, directory, transports, transports.deliver)
    channel.open()
    transports.siblings = channel
    endpoint.siblings = Siblings(index, count, channel)
    endpoint.branch_mark = endpoint.siblings.mark
    return channel
