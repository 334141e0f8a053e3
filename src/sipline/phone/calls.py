"""The calls of one user agent, found by dialog: requests inside a dialog go to their
call (481 when there is none, §12.2.2), ACKs and late 2xx retransmissions too, and a
second copy of an INVITE that reached us by another path is refused (§8.2.2.2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

from sipline.core.dialog import Dialog, DialogId, DialogTable
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.phone.call import Call
from sipline.runtime.endpoint import ServerTransaction

__all__ = ["CallTable"]


class CallTable:
    """Every call of an agent not yet ended, and the dialogs that lead to them."""

    def __init__(self, dialogs: DialogTable) -> None:
        self.dialogs = dialogs
        self._calls: list[Call] = []
        self._by_dialog: dict[DialogId, Call] = {}
        self._pending_invites: dict[tuple[str, str, int], str] = {}  # key -> Via branch

    def add(self, call: Call) -> None:
        self._calls.append(call)

    @property
    def active(self) -> list[Call]:
        return [c for c in self._calls if c.is_active]

    def bind_dialog(self, dialog: Dialog, call: Call) -> None:
        self._by_dialog[dialog.id] = call

    def ended(self, call: Call) -> None:
        for dialog_id in [d for d, c in self._by_dialog.items() if c is call]:
            del self._by_dialog[dialog_id]
            dialog = self.dialogs.get(dialog_id)
            if dialog is not None:
                dialog.terminate()
        self.dialogs.purge()
        with contextlib.suppress(ValueError):
            self._calls.remove(call)
        for key in [k for k in self._pending_invites if k[0] == call.call_id]:
            del self._pending_invites[key]

    def merged(self, request: Request) -> bool:
        """§8.2.2.2: the same INVITE (From tag, Call-ID, CSeq) by another branch."""
        key = (request.call_id, request.from_.tag or "", request.cseq.seq)
        branch = request.top_via.branch or ""
        seen = self._pending_invites.get(key)
        if seen is not None and seen != branch:
            return True
        self._pending_invites[key] = branch
        return False

    def in_dialog(self, st: ServerTransaction) -> Awaitable[None] | None:
        """A request with a To tag: to its call, or 481 (§12.2.2)."""
        try:
            dialog = self.dialogs.receive_request(st.request)
        except RemoteProtocolError as exc:
            st.respond(exc.status, exc.reason)
            return None
        call = self._by_dialog.get(dialog.id) if dialog is not None else None
        if call is None or not call.is_active:
            st.respond(481)
            return None
        return call.on_request(st)

    def on_ack(self, request: Request) -> None:
        dialog = self.dialogs.match(request)
        call = self._by_dialog.get(dialog.id) if dialog is not None else None
        if call is not None:
            call.on_ack(request)

    def on_stray(self, response: Response) -> None:
        """A 2xx to an INVITE after its transaction ended: its call ACKs it again."""
        try:
            dialog_id = DialogId.of_response(response)
            method = response.cseq.method
        except RemoteProtocolError:
            return
        if dialog_id is None or method != "INVITE" or not 200 <= response.status < 300:
            return
        call = self._by_dialog.get(dialog_id)
        if call is not None:
            call.on_stray_2xx(response)
