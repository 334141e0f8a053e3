"""The two error types of the protocol core.

Modelled on h11: `LocalProtocolError` means *we* were asked to do something the
protocol forbids (a bug in the caller); `RemoteProtocolError` means the peer sent
something malformed, and carries the response status a server should answer with.
Receiving code lets out only `RemoteProtocolError`; anything else is a bug.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "RemoteProtocolError", "SipError"]


class SipError(Exception):
    """Base class of every error the protocol core raises on purpose."""


class LocalProtocolError(SipError):
    """The local application asked for something the protocol does not allow."""


class RemoteProtocolError(SipError):
    """A peer sent something we cannot accept.

    `status` is the response a server should send back (400 unless a more precise
    code applies: 413/513 for size limits, 416 for an unknown URI scheme, 420 for an
    unsupported extension, 481, 505 for a version), and `reason` is a specific
    reason phrase naming the defect, suitable for that response's status line.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
