"""Which node this server is, among several `sipline serve` nodes sharing one store,
and the names its processes own things by there.

Everything the store keys by process (a subscription's `owner`, a message delivery's
lease) and every digest nonce's issuer names the node and the worker, `NODE/WORKER`:
two nodes both have a worker 0, and must not take each other's subscriptions for their
own, nor check each other's nonce counts in their own memory. The node's name is
`[server] node`, else HOST:PORT of the first listener (the machine's host name for a
wildcard address): stable across restarts, so a restarted node resumes what it owned.
Not `advertise`: every node may advertise the one name that resolves to them all.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from collections.abc import Sequence
from typing import Any, Protocol

from sipline.server.config_values import ConfigError

__all__ = ["check_node", "issuer_id", "node_name", "process_id"]

_NAME = re.compile(r"[A-Za-z0-9._:\[\]-]{1,100}")


class _Listener(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


def check_node(key: str, value: Any) -> str:
    """`[server] node`: letters, digits and `.-_:[]`, at most 100 (it goes into logs
    and into the store's owner columns)."""
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise ConfigError(f"{key}: must be 1 to 100 letters, digits or . - _ : [ ], not {value!r}")
    return value


def node_name(node: str | None, listen: Sequence[_Listener]) -> str:
    """This node's name: `node` when configured, else HOST:PORT of its first listener."""
    if node is not None:
        return node
    if not listen:
        return socket.gethostname()
    host = listen[0].host
    if ipaddress.ip_address(host).is_unspecified:
        host = socket.gethostname()  # 0.0.0.0 names no node: the machine does
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{listen[0].port}"


def process_id(node: str, worker: int) -> str:
    """The owner name of one server process in the store: `NODE/WORKER`."""
    return f"{node}/{worker:d}"


def issuer_id(node: str, worker: int) -> int:
    """The digest nonce issuer of one server process (core/auth_server.py): 48 bits
    of the node name's hash, then the worker index in 16 bits. Distinct for distinct
    processes but for a 1 in 2**48 chance per pair of nodes."""
    digest = hashlib.sha256(node.encode("utf-8")).digest()
    return (int.from_bytes(digest[:6], "big") << 16) | (worker & 0xFFFF)
