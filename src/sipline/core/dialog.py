"""Dialogs (RFC 3261 §12), sans-I/O.

A `Dialog` is the peer-to-peer relationship an INVITE (or another dialog-creating
request) sets up: its identifier (Call-ID, local tag, remote tag), the local and remote
sequence numbers, the remote target and the route set. It builds the requests a user
agent sends inside the dialog (§12.2.1.1, loose and strict routing; the ACK for a 2xx,
§13.2.2.4) and checks the ones it receives (§12.2.2). A `DialogTable` holds every dialog
of a user agent, matches incoming requests to them (481 when none matches), and turns
the responses to a request that may fork into one dialog per remote tag, early or
confirmed (§12.1.2, §13.2.2.4).

Nothing here sends anything: the caller adds the Via with a fresh branch, resolves the
next hop (`Dialog.next_hop`) and hands the request to its transaction layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from sipline.core.builders import build_request
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import SipUri, Uri
from sipline.core.views import NameAddr

__all__ = [
    "DIALOG_CREATING",
    "TARGET_REFRESH",
    "Dialog",
    "DialogId",
    "DialogState",
    "DialogTable",
]

# Requests that create a dialog with a 1xx or 2xx (RFC 3261 §12.1, RFC 6665 §4.1.2.2,
# RFC 3515 §2.4.4: REFER creates an implicit subscription).
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
# Target refresh requests (RFC 5057 §5): they replace the remote target with their Contact.
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
# These reuse the CSeq number of the request they refer to (§9.1, §13.2.2.4).
_NO_NEW_CSEQ = frozenset({"ACK", "CANCEL"})
# §8.1.1.5: the initial CSeq must be below 2**31.
_MAX_INITIAL_CSEQ = 2**31 - 1
_MAX_CSEQ = 2**32 - 1


class DialogState(StrEnum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID, local tag and remote tag (§12): the same dialog seen from one side."""

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_incoming(cls, request: Request) -> DialogId | None:
        """The dialog an incoming request names: our tag is in To, theirs in From."""
        local, remote = request.to.tag, request.from_.tag
        if local is None:
            return None
        return cls(request.call_id, local, remote or "")

    @classmethod
    def of_response(cls, response: Response) -> DialogId | None:
        """The dialog a response to our request names: our tag in From, theirs in To."""
        local, remote = response.from_.tag, response.to.tag
        if local is None or remote is None:
            return None
        return cls(response.call_id, local, remote)


def _request_uri(uri: Uri) -> Uri:
    """A URI fit for a Request-URI: no `method` parameter, no headers (§19.1.1 table 1)."""
    if not isinstance(uri, SipUri) or ("method" not in uri.params and not uri.headers):
        return uri
    clean = uri.copy()
    clean.params.remove("method")
    clean.headers = []
    return clean


def _is_loose(route: NameAddr) -> bool:
    uri = route.uri
    return isinstance(uri, SipUri) and uri.lr


class Dialog:
    """One dialog's state (§12.1). Build with `as_uac` or `as_uas`.

    `local` and `remote` are the From/To name-addrs as this side writes them (with the
    tags); `route_set` is in the order requests traverse it; `local_seq`/`remote_seq`
    are None while empty (§12.1.1: a UAS's local sequence starts empty).
    """

    __slots__ = (
        "caller",
        "id",
        "local",
        "local_seq",
        "remote",
        "remote_seq",
        "remote_target",
        "route_set",
        "secure",
        "state",
    )

    def __init__(
        self,
        *,
        dialog_id: DialogId,
        state: DialogState,
        local: NameAddr,
        remote: NameAddr,
        remote_target: Uri,
        route_set: list[NameAddr],
        local_seq: int | None,
        remote_seq: int | None,
        secure: bool,
        caller: bool,
    ) -> None:
        self.id = dialog_id
        self.state = state
        self.local = local
        self.remote = remote
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.secure = secure
        self.caller = caller

    # -- creation (§12.1) ---------------------------------------------------------------
    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: the dialog a 1xx (with a To tag) or 2xx to our `request` creates."""
        status = response.status
        if not 101 <= status < 300:
            raise LocalProtocolError(f"a {status} response does not create a dialog")
        dialog_id = DialogId.of_response(response)
        if dialog_id is None:
            raise RemoteProtocolError("Response without a To tag cannot create a dialog")
        target = _contact_uri(response)
        if target is None:
            if status >= 200:
                raise RemoteProtocolError("2xx creating a dialog has no Contact")
            target = request.uri  # an early dialog without Contact: refreshed by the 2xx
        return cls(
            dialog_id=dialog_id,
            state=DialogState.EARLY if status < 200 else DialogState.CONFIRMED,
            local=request.from_.copy(),
            remote=response.to.copy(),
            remote_target=target,
            # §12.1.2: the Record-Route values of the response, in reverse order.
            route_set=[r.copy() for r in reversed(response.record_routes)],
            local_seq=request.cseq.seq,
            remote_seq=None,
            secure=_is_secure(request),
            caller=True,
        )

    @classmethod
    def as_uas(cls, request: Request, response: Response) -> Dialog:
        """§12.1.1: the dialog our 1xx or 2xx (carrying our To tag) to `request` creates."""
        status = response.status
        if not 101 <= status < 300:
            raise LocalProtocolError(f"a {status} response does not create a dialog")
        local_tag = response.to.tag
        if local_tag is None:
            raise LocalProtocolError("a dialog-creating response needs a To tag")
        target = _contact_uri(request)
        if target is None:
            raise RemoteProtocolError(f"{request.method} creating a dialog has no Contact")
        return cls(
            dialog_id=DialogId(request.call_id, local_tag, request.from_.tag or ""),
            state=DialogState.EARLY if status < 200 else DialogState.CONFIRMED,
            local=response.to.copy(),
            remote=request.from_.copy(),
            remote_target=target,
            # §12.1.1: the Record-Route values of the request, in order.
            route_set=[r.copy() for r in request.record_routes],
            local_seq=None,
            remote_seq=request.cseq.seq,
            secure=_is_secure(request),
            caller=False,
        )

    # -- views ----------------------------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.id.call_id

    @property
    def local_tag(self) -> str:
        return self.id.local_tag

    @property
    def remote_tag(self) -> str:
        return self.id.remote_tag

    @property
    def is_early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def is_confirmed(self) -> bool:
        return self.state is DialogState.CONFIRMED

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def next_hop(self) -> Uri:
        """Where a request in this dialog goes first (§12.2.1.1 with §8.1.2)."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def __repr__(self) -> str:
        return f"<Dialog {self.state.value} {self.id.call_id} {self.local_tag}/{self.remote_tag}>"

    # -- sending (§12.2.1) ---------------------------------------------------------------
    def next_local_seq(self, *, initial: int = 1) -> int:
        """Advance the local CSeq (§12.2.1.1); an empty one starts at `initial` (§8.1.1.5)."""
        if self.local_seq is None:
            if not 0 <= initial <= _MAX_INITIAL_CSEQ:
                raise LocalProtocolError("an initial CSeq must be below 2**31 (§8.1.1.5)")
            self.local_seq = initial
        elif self.local_seq >= _MAX_CSEQ:
            raise LocalProtocolError("the dialog's CSeq space is exhausted")
        else:
            self.local_seq += 1
        return self.local_seq

    def create_request(
        self,
        method: str,
        *,
        contact: NameAddr | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
        max_forwards: int = 70,
        initial_seq: int = 1,
    ) -> Request:
        """A request within the dialog, without Via (§12.2.1.1).

        The CSeq is the next local number unless `cseq` is given (ACK and CANCEL must
        give the INVITE's). Target refresh requests should carry `contact`.
        """
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError("the dialog is terminated")
        if cseq is None:
            if method in _NO_NEW_CSEQ:
                raise LocalProtocolError(f"{method} reuses the CSeq of the request it refers to")
            cseq = self.next_local_seq(initial=initial_seq)
        uri, routes = self._uri_and_routes()
        return build_request(
            method,
            uri,
            from_=self.local,
            to=self.remote,
            call_id=self.call_id,
            cseq=cseq,
            via=[],  # the transport layer adds ours
            contact=contact,
            max_forwards=max_forwards,
            routes=routes,
            body=body,
            content_type=content_type,
            extra=extra,
        )

    def create_ack(
        self,
        invite_cseq: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Request:
        """The ACK for a 2xx to the INVITE numbered `invite_cseq` (§13.2.2.4): built
        like any request in the dialog, with the INVITE's CSeq number. The caller adds a
        Via with a new branch, and any credentials the INVITE carried."""
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError("the dialog is terminated")
        return self.create_request(
            "ACK", cseq=invite_cseq, body=body, content_type=content_type, extra=extra
        )

    def _uri_and_routes(self) -> tuple[Uri, list[NameAddr]]:
        """§12.2.1.1: loose routing keeps the remote target in the Request-URI; a strict
        router (no `lr`) first gets its own URI there and the remote target goes last
        in Route."""
        if not self.route_set:
            return _request_uri(self.remote_target), []
        first = self.route_set[0]
        if _is_loose(first):
            return _request_uri(self.remote_target), [r.copy() for r in self.route_set]
        routes = [r.copy() for r in self.route_set[1:]]
        routes.append(NameAddr.of(self.remote_target))
        return _request_uri(first.uri), routes

    # -- receiving (§12.2.2, §12.2.1.2) ----------------------------------------------------
    def receive_request(self, request: Request) -> None:
        """Check and account for a request received in this dialog (§12.2.2).

        Raises `RemoteProtocolError` with 500 for a CSeq lower than the last one (the
        request is out of order) and 481 once the dialog is terminated.
        """
        if self.state is DialogState.TERMINATED:
            raise RemoteProtocolError("Call/Transaction Does Not Exist (dialog ended)", 481)
        method = request.method
        seq = request.cseq.seq
        if method not in _NO_NEW_CSEQ:
            if self.remote_seq is not None and seq < self.remote_seq:
                raise RemoteProtocolError("Server Internal Error (CSeq out of order)", 500)
            self.remote_seq = seq
        if method in TARGET_REFRESH:
            target = _contact_uri(request)
            if target is not None:
                self.remote_target = target

    def receive_response(self, request: Request, response: Response) -> None:
        """Account for a response to `request`, which we sent in this dialog or which
        created it (§12.2.1.2, §13.2.2.4)."""
        if self.state is DialogState.TERMINATED:
            return
        status = response.status
        method = request.method
        if status in (408, 481):
            # §12.2.1.2 (and §14.1 for a re-INVITE): the peer no longer knows the
            # dialog (481), or cannot be reached (408, or a transaction timeout).
            self.state = DialogState.TERMINATED
            return
        if self.is_early and method in DIALOG_CREATING and request.cseq.seq == self.local_seq:
            if status >= 300:
                self.state = DialogState.TERMINATED  # §12.3, §13.2.2.3
                return
            if status >= 200:
                # §13.2.2.4: confirmed, with the route set recomputed from the 2xx.
                self.state = DialogState.CONFIRMED
                self.route_set = [r.copy() for r in reversed(response.record_routes)]
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target
            return
        if 200 <= status < 300 and method in TARGET_REFRESH:
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target

    def confirm(self) -> None:
        """A UAS sent the 2xx on an early dialog of its own (§12.1.1, §13.3.1.4)."""
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError("the dialog is terminated")
        self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED


def _contact_uri(message: Request | Response) -> Uri | None:
    contacts = message.contacts
    return contacts[0].uri if contacts else None


def _is_secure(request: Request) -> bool:
    """§12.1.1/§12.1.2: secure if the request was sent over TLS to a sips: Request-URI."""
    uri = request.uri
    return isinstance(uri, SipUri) and uri.secure


class DialogTable:
    """Every dialog of a user agent, by `DialogId`."""

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def add(self, dialog: Dialog) -> Dialog:
        existing = self._dialogs.get(dialog.id)
        if existing is not None and not existing.terminated:
            raise LocalProtocolError(f"dialog {dialog.id} exists")
        self._dialogs[dialog.id] = dialog
        return dialog

    def remove(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.id) is dialog:
            del self._dialogs[dialog.id]

    def purge(self) -> int:
        """Forget terminated dialogs; returns how many went."""
        dead = [d for d in self._dialogs.values() if d.terminated]
        for d in dead:
            del self._dialogs[d.id]
        return len(dead)

    def match(self, request: Request) -> Dialog | None:
        """The live dialog an incoming request belongs to, if any."""
        dialog_id = DialogId.of_incoming(request)
        if dialog_id is None:
            return None
        dialog = self._dialogs.get(dialog_id)
        return dialog if dialog is not None and not dialog.terminated else None

    def receive_request(self, request: Request) -> Dialog | None:
        """Match and check an incoming request (§12.2.2).

        None for a request outside any dialog (no To tag); `RemoteProtocolError` 481
        for a To tag that names no dialog we know, 500 for an out-of-order CSeq.
        """
        if request.to.tag is None:
            return None
        dialog = self.match(request)
        if dialog is None:
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        dialog.receive_request(request)
        return dialog

    def siblings(self, call_id: str, local_tag: str) -> list[Dialog]:
        """The dialogs one request of ours created (forks), live or not."""
        return [
            d for d in self._dialogs.values() if d.call_id == call_id and d.local_tag == local_tag
        ]

    def receive_uac_response(self, request: Request, response: Response) -> Dialog | None:
        """A response to a dialog-creating `request` we sent (§12.1.2, §13.2.2).

        A 1xx with a To tag or a 2xx makes (or moves on) the dialog of its remote tag,
        so a forked request gets one dialog per branch that answered. A non-2xx final
        response ends every early dialog of the request (§13.2.2.3). Returns the dialog
        the response belongs to, if any.
        """
        status = response.status
        local_tag = request.from_.tag
        if local_tag is None:
            raise LocalProtocolError("a dialog-creating request needs a From tag")
        if status >= 300:
            for d in self.siblings(request.call_id, local_tag):
                if d.is_early:
                    d.terminate()
            return None
        if status == 100 or response.to.tag is None:
            return None
        dialog_id = DialogId.of_response(response)
        assert dialog_id is not None  # both tags are present
        dialog = self._dialogs.get(dialog_id)
        if dialog is None or dialog.terminated:
            return self.add(Dialog.as_uac(request, response))
        dialog.receive_response(request, response)
        return dialog
