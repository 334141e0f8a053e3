"""The message-summary event body, `application/simple-message-summary` (RFC 3842 §5.2).

    Messages-Waiting: yes
    Message-Account: sip:alice@example.com
    Text-Message: 2/0

Counts are per message-context class (RFC 3458: voice, fax, pager, multimedia, text,
none) as new/old with optional (urgent-new/urgent-old).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["CONTENT_TYPE", "Counts", "MessageSummary", "SummaryError", "parse_summary"]

CONTENT_TYPE = "application/simple-message-summary"
CLASSES = (
    "voice-message",
    "fax-message",
    "pager-message",
    "multimedia-message",
    "text-message",
    "none",
)
# RFC 3842 §5.2: msg-summary-line = message-context-class HCOLON newmsgs SLASH oldmsgs
#                [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]
_COUNTS = re.compile(
    r"^\s*(\d{1,9})\s*/\s*(\d{1,9})\s*(?:\(\s*(\d{1,9})\s*/\s*(\d{1,9})\s*\))?\s*$"
)
_MAX_LINES = 64


class SummaryError(ValueError):
    """The body is not a simple message summary."""


@dataclass(frozen=True, slots=True)
class Counts:
    new: int
    old: int
    new_urgent: int | None = None
    old_urgent: int | None = None

    def __str__(self) -> str:
        urgent = (
            f" ({self.new_urgent}/{self.old_urgent})"
            if self.new_urgent is not None and self.old_urgent is not None
            else ""
        )
        return f"{self.new}/{self.old}{urgent}"


@dataclass(frozen=True, slots=True)
class MessageSummary:
    waiting: bool
    account: str | None = None
    counts: dict[str, Counts] = field(default_factory=dict)  # class name (lower case) -> counts

    @classmethod
    def of_text(cls, account: str, new: int, old: int = 0) -> MessageSummary:
        """What the server announces for stored instant messages."""
        return cls(new > 0, account, {"text-message": Counts(new, old)})

    @classmethod
    def of_mailbox(
        cls, account: str, text: tuple[int, int], voice: tuple[int, int]
    ) -> MessageSummary:
        """Stored texts and voicemail (RFC 3842 §5.2: Voice-Message new/old); the voice
        line is left out while the mailbox is empty."""
        counts = {"text-message": Counts(*text)}
        if voice != (0, 0):
            counts["voice-message"] = Counts(*voice)
        return cls(text[0] > 0 or voice[0] > 0, account, counts)

    def serialize(self) -> bytes:
        lines = [f"Messages-Waiting: {'yes' if self.waiting else 'no'}"]
        if self.account is not None:
            lines.append(f"Message-Account: {self.account}")
        for name, counts in self.counts.items():
            if name not in CLASSES:
                raise SummaryError(f"unknown message class {name!r}")
            lines.append(f"{name.title()}: {counts}")
        return ("\r\n".join(lines) + "\r\n").encode()


def parse_summary(data: bytes) -> MessageSummary:
    """Parse the status lines (the optional message headers after them are ignored)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SummaryError("message summary is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > _MAX_LINES + 1:
        raise SummaryError("message summary too long")
    waiting: bool | None = None
    account: str | None = None
    counts: dict[str, Counts] = {}
    for line in lines:
        if not line.strip():
            if waiting is not None:
                break  # the optional message headers follow (§5.2)
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SummaryError(f"bad line {line[:40]!r}")
        key, value = name.strip().lower(), value.strip()
        if waiting is None:
            if key != "messages-waiting" or value.lower() not in ("yes", "no"):
                raise SummaryError("the first line must be Messages-Waiting: yes or no")
            waiting = value.lower() == "yes"
        elif key == "message-account":
            account = value
        elif key in CLASSES:
            m = _COUNTS.match(value)
            if m is None:
                raise SummaryError(f"bad counts {value!r} for {key}")
            nu, ou = m.group(3), m.group(4)
            counts[key] = Counts(
                int(m.group(1)),
                int(m.group(2)),
                int(nu) if nu is not None else None,
                int(ou) if ou is not None else None,
            )
        # Unknown lines are extensions: ignored.
    if waiting is None:
        raise SummaryError("empty message summary")
    return MessageSummary(waiting, account, counts)
