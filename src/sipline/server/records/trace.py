"""A call's messages as a ladder (sngrep's view: one column per address, one arrow
per message, in order, with timing) and as pcap packets. Pure."""

from __future__ import annotations

from typing import Any

from sipline.server.records.pcap import Packet
from sipline.storage.ops import TracedMessage

__all__ = ["SERVER", "ladder", "packets", "parse_hostport"]

SERVER = "sipline"


def parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def _label(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    if line.startswith("SIP/"):
        return line.split(" ", 1)[1] if " " in line else line
    method, _, rest = line.partition(" ")
    uri = rest.rsplit(" ", 1)[0]
    return f"{method} {uri}"


def ladder(messages: list[TracedMessage]) -> dict[str, Any]:
    """{"parties": [column names], "messages": [{from, to, label, t, ...}]}: the first
    peer heard from (the caller) on the left, the server next, the others after in
    the order they appear."""
    peers: list[str] = []
    for m in messages:
        name = f"{m.transport.lower()}:{m.remote}"
        if name not in peers:
            peers.append(name)
    parties = [*peers[:1], SERVER, *peers[1:]]
    start = messages[0].at if messages else 0.0
    rows = []
    for m in messages:
        peer = f"{m.transport.lower()}:{m.remote}"
        rows.append(
            {
                "from": SERVER if m.sent else peer,
                "to": peer if m.sent else SERVER,
                "label": _label(m.data),
                "at": m.at,
                "t": round(m.at - start, 6),
                "transport": m.transport,
                "local": m.local,
                "remote": m.remote,
                "data": m.data.decode("utf-8", "replace"),
            }
        )
    return {"parties": parties, "messages": rows}


def packets(messages: list[TracedMessage]) -> list[Packet]:
    out = []
    for m in messages:
        local, remote = parse_hostport(m.local), parse_hostport(m.remote)
        src, dst = (local, remote) if m.sent else (remote, local)
        out.append(Packet(m.at, src, dst, m.data))
    return out
