"""Every message the server sends or receives, seen once (`Endpoint.tap`): counted for
the metrics, logged for the SIP trace, sent to Homer (HEP), and for INVITE dialogs
fed to the call records and kept for the call's ladder diagram and pcap export.

Cheap on the hot path: the start line and one CSeq search decide whether a message
is part of a call; only those are parsed again. Store writes are queued and written
in one batch every `FLUSH_S` through the store's group commit.
"""

from __future__ import annotations

import asyncio
import logging
import re

from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response, parse_message
from sipline.runtime.endpoint import Address, Endpoint
from sipline.server.records.calls import CallTracker
from sipline.server.records.hep import HepSender
from sipline.server.records.metrics import Metrics
from sipline.server.records.settings import RecordSettings
from sipline.storage.aio import AsyncStore
from sipline.storage.base import StoreError
from sipline.storage.ops import CallUpdate, OpsEvent, TracedMessage

__all__ = ["FLUSH_S", "MessageTap", "hostport"]

log = logging.getLogger("sipline.records")
sip_log = logging.getLogger("sipline.sip")

FLUSH_S = 0.2
# Updates (and messages) waiting for the store; past this, they are dropped (and said):
# a store that falls behind must not take the server's memory with it.
_MAX_QUEUE = 10_000
# The methods of an INVITE dialog (RFC 3261, 3262, 3311, 6086): their messages make
# up a call's ladder.
_CALL_METHODS = frozenset({b"INVITE", b"ACK", b"BYE", b"CANCEL", b"PRACK", b"UPDATE", b"INFO"})
_METHODS = frozenset(
    b"INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER"
    b" MESSAGE UPDATE".split()
)
_CSEQ = re.compile(rb"\r\n(?i:cseq)[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)")
_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE)


def hostport(address: Address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MessageTap:
    def __init__(
        self,
        endpoint: Endpoint,
        store: AsyncStore,
        settings: RecordSettings,
        metrics: Metrics | None,
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self.calls = CallTracker(metrics, self.write)
        self.hep: HepSender | None = None
        self._ops: list[CallUpdate] = []
        self._messages: list[TracedMessage] = []
        self._dropped = 0
        self._flusher: asyncio.Task[None] | None = None
        self._locals: dict[str, Address] = {}
        # (request or response, sent, method or code) -> messages since the last push
        self._tally: dict[tuple[str, bool, bytes], int] = {}

    # -- life -------------------------------------------------------------------------------
    def start(self) -> None:
        self.apply(self.settings)
        self.endpoint.tap = self
        self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    def apply(self, settings: RecordSettings) -> None:
        """Take new settings (at start and on reload)."""
        self.settings = settings
        address = settings.hep.address
        if self.hep is not None and (address is None or address != self.hep.address):
            self.hep.close()
            self.hep = None
        if address is not None and self.hep is None:
            self.hep = HepSender(address, settings.hep.capture_id, settings.hep.password)

    async def stop(self) -> None:
        if self.endpoint.tap is self:
            self.endpoint.tap = None
        if self._flusher is not None:
            self._flusher.cancel()
        await self.flush()
        if self.hep is not None:
            self.hep.close()

    # -- the tap ----------------------------------------------------------------------------
    def _local(self, transport: str) -> Address:
        """Our address for a message the transport layer picked the socket of."""
        found = self._locals.get(transport)
        if found is None:
            try:
                item = self.endpoint.local_address(transport)
                found = (item.host, item.port)
            except LocalProtocolError:  # no listener of that kind: name none
                found = ("0.0.0.0", 0)
            self._locals[transport] = found
        return found

    def push_counts(self) -> None:
        """Add the messages counted since the last push to the metrics (each second and
        before a scrape: a dictionary increment per message on the hot path)."""
        if self.metrics is None or not self._tally:
            return
        tally, self._tally = self._tally, {}
        for (kind, sent, value), n in tally.items():
            counter = self.metrics.responses if kind == "r" else self.metrics.requests
            counter.labels("out" if sent else "in", value.decode("ascii", "replace")[:16]).inc(n)

    def __call__(
        self,
        sent: bool,
        data: bytes,
        transport: str,
        local: Address | None,
        remote: Address,
        message: Request | Response | None = None,
    ) -> None:
        end = data.find(b"\r\n")
        start = data[:end] if end >= 0 else data[:100]
        head = data.find(b"\r\n\r\n")
        status = 0
        if start[:4] == b"SIP/":
            code = start[8:11]
            status = int(code) if code.isdigit() and len(code) == 3 else 0
            key = ("r", sent, code if status else b"other")
            self._tally[key] = self._tally.get(key, 0) + 1
            match = _CSEQ.search(data, 0, head)
            method = match.group(1).upper() if match else b""
        else:
            method = start[: start.find(b" ")]
            # Unknown methods count as one label: a scanner must not grow the series.
            key = ("q", sent, method if method in _METHODS else b"other")
            self._tally[key] = self._tally.get(key, 0) + 1
        trace = self.settings.log.sip_trace
        if trace or sip_log.isEnabledFor(logging.DEBUG):
            sip_log.log(
                logging.INFO if trace else logging.DEBUG,
                "%s %s %s %s (%d bytes)\n%s",
                "sent" if sent else "received",
                transport,
                "->" if sent else "<-",
                hostport(remote),
                len(data),
                data.decode("utf-8", "replace").rstrip("\r\n"),
                extra={"event": "sip", "src": hostport(remote)},
            )
        cdr = self.settings.cdr
        calls = method in _CALL_METHODS and cdr.enabled
        if self.hep is None and not calls:
            return
        at = self.endpoint.wall()
        if local is None:
            local = self._local(transport)
        if self.hep is not None:
            self.hep.send(sent, data, transport, local, remote, at)
        if not calls:
            return
        # Parsed again only where the record needs more than the Call-ID: a new call, a
        # forwarded INVITE naming who diverted it, the responses sent to the caller
        # (ringing, answer, the end of an attempt) and a BYE received.
        if status:
            parse = sent and method == b"INVITE" and status >= 180
        elif method == b"INVITE":
            parse = not sent or b"Diversion" in data or b"History-Info" in data
        else:
            parse = method == b"BYE" and not sent
        if parse:
            try:  # what the endpoint received it parsed already; what it sends, not
                if message is None:
                    message = parse_message(data, stream=transport != "UDP")
                call_id = message.call_id
            except RemoteProtocolError:
                return
            self.calls.observe(sent, message, f"{transport.lower()}:{hostport(remote)}", at)
        else:
            found = _CALL_ID.search(data, 0, head)
            if found is None:
                return
            call_id = found.group(1).strip().decode("utf-8", "replace")
            if status >= 300 and not sent and method == b"INVITE":
                self.calls.downstream_final(call_id, status)
        if cdr.messages and len(self._messages) < _MAX_QUEUE:
            self._messages.append(
                TracedMessage(call_id, at, sent, transport, hostport(local), hostport(remote), data)
            )

    # -- writing ----------------------------------------------------------------------------
    def write(self, op: CallUpdate) -> None:
        if len(self._ops) >= _MAX_QUEUE:
            self._dropped += 1
            return
        self._ops.append(op)

    def event(self, event: OpsEvent) -> None:
        self.write(("add_event", (event,)))

    async def _flush_forever(self) -> None:
        while True:
            await self.endpoint.timers.sleep(FLUSH_S)
            await self.flush()

    async def flush(self) -> None:
        ops, self._ops = self._ops, []
        messages, self._messages = self._messages, []
        if self._dropped:
            log.warning("call records: %d updates dropped (the store is behind)", self._dropped)
            self._dropped = 0
        if not ops and not messages:
            return

        try:
            await self.store.write(self.store.store.record, ops, messages)
        except StoreError as exc:
            log.warning("writing call records failed: %s", exc)
