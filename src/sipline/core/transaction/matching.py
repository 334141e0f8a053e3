"""Which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3, §9.2).

Keys are plain tuples so that matching is one dict lookup per message. A client
transaction is keyed by the branch it put in the top Via and the CSeq method (so a
CANCEL, which reuses the INVITE's branch, is a transaction of its own). A server
transaction is keyed by branch, sent-by and method, ACK counting as INVITE.

Requests from RFC 2543 elements carry no magic cookie in the branch (or none at all;
a bare `z9hG4bK` counts as none, RFC 4475 §3.2.1). For them the key is made of the
fields a response copies (Call-ID, CSeq number, From tag, top Via) so that a response
can still find its transaction; the Request-URI and To tag, which a response does not
carry verbatim, are compared after the lookup (`legacy_match`).
"""

from __future__ import annotations

from typing import NamedTuple

from sipline.core.builders import MAGIC_COOKIE
from sipline.core.message import Message, Request

__all__ = [
    "ClientKey",
    "ServerKey",
    "cancel_targets",
    "client_key",
    "has_magic_cookie",
    "is_legacy",
    "legacy_match",
    "server_key",
]

_COOKIE_LEN = len(MAGIC_COOKIE)
_LEGACY = "\x00"  # cannot occur in a branch token, so legacy keys never collide with real ones


class ClientKey(NamedTuple):
    branch: str
    method: str


class ServerKey(NamedTuple):
    branch: str
    sent_by: str
    method: str


def has_magic_cookie(branch: str | None) -> bool:
    """§8.1.1.7: an RFC 3261 branch starts with the cookie and has something after it."""
    return branch is not None and len(branch) > _COOKIE_LEN and branch.startswith(MAGIC_COOKIE)


def client_key(msg: Message) -> ClientKey | None:
    """§17.1.3: top Via branch + CSeq method; None when the top Via has no branch."""
    branch = msg.top_via.branch
    if branch is None:
        return None
    return ClientKey(branch, msg.cseq.method)


def server_key(msg: Message, method: str) -> ServerKey:
    """§17.2.3 key of a request (`method` its method) or of a response to it (`method`
    its CSeq method). May raise `RemoteProtocolError` for a malformed Via, CSeq, Call-ID
    or From (the legacy key needs them)."""
    via = msg.top_via
    if method == "ACK":
        method = "INVITE"
    branch = via.branch
    sent_by = via.sent_by.lower()
    if branch is not None and len(branch) > _COOKIE_LEN and branch.startswith(MAGIC_COOKIE):
        return ServerKey(branch, sent_by, method)
    legacy = _LEGACY.join(
        ("", msg.call_id, str(msg.cseq.seq), msg.from_.tag or "", str(via).lower())
    )
    return ServerKey(legacy, sent_by, method)


def is_legacy(key: ServerKey) -> bool:
    return key.branch.startswith(_LEGACY)


def legacy_match(original: Request, request: Request, response_to_tag: str | None) -> bool:
    """RFC 2543 matching (§17.2.3, §9.2), the fields the key leaves out: the Request-URI,
    and the To tag. An ACK carries the To tag of the response it acknowledges."""
    if request.uri_text != original.uri_text:
        return False
    tag = request.to.tag
    if request.method == "ACK" and response_to_tag is not None:
        return tag == response_to_tag
    return tag == original.to.tag


# §9.2: a CANCEL names no method, so the request it cancels is looked up under each
# method a CANCEL can meet (every known one but ACK and CANCEL), the INVITE first.
# An extension method outside this list is not found (481), as a UAS that does not
# know it would have refused the request itself anyway.
_CANCEL_TARGETS = (
    "INVITE", "BYE", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH",
    "INFO", "REFER", "MESSAGE", "UPDATE",
)  # fmt: skip


def cancel_targets(cancel_key: ServerKey) -> tuple[ServerKey, ...]:
    """The keys the request a CANCEL (keyed `cancel_key`) cancels may have (§9.2: same
    branch and sent-by, any method but ACK and CANCEL), the INVITE's first."""
    branch, sent_by, _ = cancel_key
    return tuple(ServerKey(branch, sent_by, m) for m in _CANCEL_TARGETS)
