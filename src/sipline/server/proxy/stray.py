"""Which stray responses a stateful proxy forwards (RFC 3261 §16.7, §18.1.2).

A response that matches no client transaction is forwarded only when it is a 2xx to
an INVITE: a forked INVITE's later 2xx answers and the callee's 2xx retransmissions
(§13.3.1.4) outlive the client transaction, and they must reach the caller so the
dialog is acknowledged (RFC 6026 §7.2: a proxy forwards a stray 2xx to INVITE).
Every other stray response is dropped, and even a 2xx goes on only when the Via on
top is one a branch of ours put there. Without this, a stranger could send a
response naming any host in its second Via and have us send datagrams there.
"""

from __future__ import annotations

import string

from sipline.core.builders import MAGIC_COOKIE
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Response

__all__ = ["forwardable_stray", "is_our_branch"]

_HEX = frozenset(string.hexdigits.lower())
_LOOP_HASH_LEN = 16  # proxy.local.loop_hash: blake2b with an 8-byte digest, in hex


def is_our_branch(branch: str | None) -> bool:
    """The shape of the branch `proxy.forward.branch_request` puts in its Via: the
    magic cookie, the §16.6 step 8 loop hash, a dot, then a random part."""
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        return False
    loop_hash, dot, rest = branch[len(MAGIC_COOKIE) :].partition(".")
    return len(loop_hash) == _LOOP_HASH_LEN and set(loop_hash) <= _HEX and bool(dot and rest)


def forwardable_stray(response: Response) -> bool:
    """True for a 2xx to INVITE with at least one Via below the top one (§16.7 step 3:
    a response with only our Via was meant for us)."""
    if not 200 <= response.status < 300:
        return False
    try:
        return response.cseq.method == "INVITE" and len(response.vias) >= 2
    except RemoteProtocolError:
        return False
