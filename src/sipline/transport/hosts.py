"""Names from the system's hosts file, answered as `getaddrinfo` would.

dnspython asks DNS only, so `localhost` and the names an operator put in /etc/hosts
were "no DNS records" to the RFC 3263 walk. With the usual name service order (files
before dns) a name in the hosts file is answered from it alone: its addresses are the
A/AAAA records (RFC 3263 §4.2 falls back to them when there is no NAPTR or SRV), and
DNS is never asked about it. The file is read again when it changes.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

__all__ = ["DEFAULT_PATH", "HostsFile", "parse_hosts"]

DEFAULT_PATH = Path("/etc/hosts")


class HostsFile:
    """The name -> addresses map of a hosts file (`path`), re-read when its mtime changes."""

    def __init__(self, path: Path | str = DEFAULT_PATH) -> None:
        self._path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._names: dict[str, tuple[list[str], list[str]]] = {}

    def addresses(self, name: str, version: int) -> tuple[str, ...] | None:
        """The IPv`version` addresses of `name`, or None when the file does not name it
        (then DNS is asked). A name listed with addresses of the other version only
        gets an empty tuple: it is known here, and has none of this version."""
        entry = self._table().get(name.rstrip(".").lower())
        if entry is None:
            return None
        return tuple(entry[0] if version == 4 else entry[1])

    def __contains__(self, name: str) -> bool:
        return name.rstrip(".").lower() in self._table()

    def _table(self) -> dict[str, tuple[list[str], list[str]]]:
        try:
            st = os.stat(self._path)
        except OSError:
            self._names, self._stamp = {}, None
            return self._names
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                text = self._path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            self._names, self._stamp = parse_hosts(text), stamp
        return self._names


def parse_hosts(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """hosts(5): an address, then its names; `#` starts a comment. Bad lines are skipped."""
    names: dict[str, tuple[list[str], list[str]]] = {}
    for line in text.splitlines():
        fields = line.partition("#")[0].split()
        if len(fields) < 2:
            continue
        try:
            address = ipaddress.ip_address(fields[0].partition("%")[0])
        except ValueError:
            continue
        for name in fields[1:]:
            v4, v6 = names.setdefault(name.rstrip(".").lower(), ([], []))
            bucket = v4 if address.version == 4 else v6
            if str(address) not in bucket:
                bucket.append(str(address))
    return names
