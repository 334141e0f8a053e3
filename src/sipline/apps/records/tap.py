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
from collections import OrderedDict
from collections.abc import Callable

from sipline.apps.ops.config import OpsConfig
from sipline.apps.ops.metrics import Metrics
from sipline.apps.records.calls import CallTracker, StoreOp
from sipline.apps.records.hep import HepSender
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, parse_message
from sipline.runtime.endpoint import Address, Endpoint
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Store, StoreError
from sipline.storage.ops import OpsEvent, TracedMessage

__all__ = ["FLUSH_S", "MessageTap", "hostport"]

log = logging.getLogger("sipline.records")
sip_log = logging.getLogger("sipline.sip")

FLUSH_S = 0.2
_MAX_QUEUE = 10_000  # store operations waiting; past this, records are dropped (and said)
# The methods of an INVITE dialog (RFC 3261, 3262, 3311, 6086): their messages make
# up a call's ladder.
_CALL_METHODS = frozenset({b"INVITE", b"ACK", b"BYE", b"CANCEL", b"PRACK", b"UPDATE", b"INFO"})
_CSEQ = re.compile(rb"\r\n(?:CSeq|cseq|CSEQ)[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)")
_AUTH = re.compile(rb"\r\n(?:proxy-)?authorization[ \t]*:", re.IGNORECASE)
_REMEMBER_AUTH = 4096


def hostport(address: Address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MessageTap:
    def __init__(
        self,
        endpoint: Endpoint,
        store: AsyncStore,
        settings: OpsConfig,
        metrics: Metrics | None,
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self.calls = CallTracker(metrics, self.write)
        self.hep: HepSender | None = None
        self._ops: list[StoreOp] = []
        self._messages: list[TracedMessage] = []
        self._dropped = 0
        self._flusher: asyncio.Task[None] | None = None
        # (Call-ID, CSeq) of requests that carried credentials -> (user, source, method)
        self._credentials: OrderedDict[tuple[bytes, bytes], tuple[str, str, str]] = OrderedDict()

    # -- life -------------------------------------------------------------------------------
    def start(self) -> None:
        self.apply(self.settings)
        self.endpoint.tap = self
        self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    def apply(self, settings: OpsConfig) -> None:
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
    def __call__(
        self, sent: bool, data: bytes, transport: str, local: Address | None, remote: Address
    ) -> None:
        if local is None:
            try:
                item = self.endpoint.listening(transport, via=True)
                local = (item.host, item.port)
            except Exception:  # no listener of that kind: name none
                local = ("0.0.0.0", 0)
        start = data[: data.find(b"\r\n")] if b"\r\n" in data else data[:100]
        is_response = start.startswith(b"SIP/")
        direction = "out" if sent else "in"
        metrics = self.metrics
        if is_response:
            code = start[8:11].decode("ascii", "replace")
            if metrics is not None:
                metrics.responses.labels(direction, code).inc()
            match = _CSEQ.search(data, 0, data.find(b"\r\n\r\n"))
            method = match.group(1).upper() if match else b""
            if sent and code in ("401", "407", "403"):
                self._auth_refused(data, code)
        else:
            method = start.split(b" ", 1)[0]
            if metrics is not None:
                metrics.requests.labels(direction, method.decode("ascii", "replace")[:16]).inc()
            if not sent and _AUTH.search(data, 0, data.find(b"\r\n\r\n")):
                self._note_credentials(data, transport, remote)
        trace = self.settings.log.sip_trace
        if trace or sip_log.isEnabledFor(logging.DEBUG):
            arrow = "->" if sent else "<-"
            sip_log.log(
                logging.INFO if trace else logging.DEBUG,
                "%s %s %s %s (%d bytes)\n%s",
                "sent" if sent else "received",
                transport,
                arrow,
                hostport(remote),
                len(data),
                data.decode("utf-8", "replace").rstrip("\r\n"),
                extra={"event": "sip", "src": hostport(remote)},
            )
        at = self.endpoint.wall()
        if self.hep is not None:
            self.hep.send(sent, data, transport, local, remote, at)
        if method not in _CALL_METHODS or not self.settings.cdr.enabled:
            return
        try:
            message = parse_message(data, stream=transport != "UDP")
            call_id = message.call_id
        except RemoteProtocolError:
            return
        peer = f"{transport.lower()}:{hostport(remote)}"
        self.calls.observe(sent, message, peer, at)
        if self.settings.cdr.messages:
            self._messages.append(
                TracedMessage(call_id, at, sent, transport, hostport(local), hostport(remote), data)
            )

    # -- failed logins ----------------------------------------------------------------------
    def _key(self, data: bytes) -> tuple[bytes, bytes] | None:
        head = data[: data.find(b"\r\n\r\n")]
        m = re.search(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", head, re.IGNORECASE)
        c = re.search(rb"\r\nCSeq[ \t]*:[ \t]*([^\r\n]+)", head, re.IGNORECASE)
        return (m.group(1).strip(), c.group(1).strip()) if m and c else None

    def _note_credentials(self, data: bytes, transport: str, remote: Address) -> None:
        key = self._key(data)
        if key is None:
            return
        try:
            request = parse_message(data, stream=transport != "UDP")
        except RemoteProtocolError:
            return
        if not isinstance(request, Request):
            return
        try:
            creds = request.credentials(proxy=True) + request.credentials()
        except RemoteProtocolError:
            return
        user = next(
            (getattr(c, "username", None) for c in creds if getattr(c, "username", None)), None
        )
        realm = next((getattr(c, "realm", None) for c in creds if getattr(c, "realm", None)), None)
        name = f"{user}@{realm}" if user and realm else (user or "?")
        src = f"{transport.lower()}:{hostport(remote)}"
        self._credentials[key] = (name, src, request.method)
        while len(self._credentials) > _REMEMBER_AUTH:
            self._credentials.popitem(last=False)

    def _auth_refused(self, data: bytes, code: str) -> None:
        key = self._key(data)
        if key is None:
            return
        noted = self._credentials.pop(key, None)
        if noted is None:
            return
        head = data[: data.find(b"\r\n\r\n")].lower()
        if b"stale=true" in head:
            return  # an old nonce, not a wrong password (RFC 7616 §3.3)
        user, src, method = noted
        if self.metrics is not None:
            self.metrics.auth_failures.labels(method).inc()
        log.warning(
            "authentication failed user=%s src=%s method=%s status=%s",
            user,
            src,
            method,
            code,
            extra={"event": "auth_failed", "user": user, "src": src},
        )
        event = OpsEvent(self.endpoint.wall(), "auth_failed", user, src, f"{method} {code}")
        self.write(lambda s: s.add_event(event))

    # -- writing ----------------------------------------------------------------------------
    def write(self, op: StoreOp) -> None:
        if len(self._ops) >= _MAX_QUEUE:
            self._dropped += 1
            return
        self._ops.append(op)

    def event(self, event: OpsEvent) -> None:
        self.write(lambda s: s.add_event(event))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await self.flush()

    async def flush(self) -> None:
        ops, self._ops = self._ops, []
        messages, self._messages = self._messages, []
        if self._dropped:
            log.warning("call records: %d updates dropped (the store is behind)", self._dropped)
            self._dropped = 0
        if not ops and not messages:
            return

        def run(store: Store) -> None:
            for op in ops:
                try:
                    op(store)
                except StoreError as exc:
                    log.warning("call record update failed: %s", exc)
            if messages:
                store.add_messages(messages)

        try:
            await self.store.write(run, self.store.store)
        except StoreError as exc:
            log.warning("writing call records failed: %s", exc)


def as_callable(tap: MessageTap) -> Callable[[bool, bytes, str, Address | None, Address], None]:
    return tap
