"""The one error type of the SDP layer."""

from __future__ import annotations

__all__ = ["SdpError"]


class SdpError(ValueError):
    """A session description is malformed, or an offer/answer exchange breaks RFC 3264.

    The parser lets out nothing else. `line_number` (1-based) and `line` name the
    offending line when the defect belongs to one; `reason` is the defect alone.
    """

    def __init__(
        self, reason: str, *, line_number: int | None = None, line: str | None = None
    ) -> None:
        where = ""
        if line_number is not None:
            shown = line if line is None or len(line) <= 80 else line[:77] + "..."
            where = f"line {line_number}" + (f" {shown!r}" if shown is not None else "") + ": "
        super().__init__(where + reason)
        self.reason = reason
        self.line_number = line_number
        self.line = line
