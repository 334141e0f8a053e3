"""A notifier's dialog (RFC 3261 §12) as JSON, so a subscription outlives the process."""

from __future__ import annotations

import json

from sipline.core.dialog import Dialog, DialogId, DialogState
from sipline.core.uri import parse_uri
from sipline.core.views import parse_name_addr

__all__ = ["dialog_from_json", "dialog_key", "dialog_to_json"]


def dialog_key(dialog_id: DialogId) -> str:
    """The store's id of a subscription: its dialog id."""
    return f"{dialog_id.call_id}|{dialog_id.local_tag}|{dialog_id.remote_tag}"


def dialog_to_json(d: Dialog) -> str:
    return json.dumps(
        {
            "call_id": d.call_id,
            "local_tag": d.local_tag,
            "remote_tag": d.remote_tag,
            "state": d.state.value,
            "local": str(d.local),
            "remote": str(d.remote),
            "target": str(d.remote_target),
            "routes": [str(r) for r in d.route_set],
            "local_seq": d.local_seq,
            "remote_seq": d.remote_seq,
            "secure": d.secure,
            "caller": d.caller,
        }
    )


def dialog_from_json(text: str) -> Dialog:
    """The dialog back; ValueError (or the parser's RemoteProtocolError) when damaged."""
    f = json.loads(text)
    return Dialog(
        dialog_id=DialogId(str(f["call_id"]), str(f["local_tag"]), str(f["remote_tag"])),
        state=DialogState(f["state"]),
        local=parse_name_addr(str(f["local"]), "From"),
        remote=parse_name_addr(str(f["remote"]), "To"),
        remote_target=parse_uri(str(f["target"])),
        route_set=[parse_name_addr(str(r), "Route") for r in f["routes"]],
        local_seq=f["local_seq"],
        remote_seq=f["remote_seq"],
        secure=bool(f["secure"]),
        caller=bool(f["caller"]),
    )
