"""Free loopback ports for tests: one number free for both UDP and TCP, as a SIP
listener on one port for both transports needs.

A port picked for one transport may be in use for the other (another test's outgoing
TCP connection takes an ephemeral port the kernel also hands out for UDP), so the
pair is tried again until both binds succeed.
"""

from __future__ import annotations

import socket

__all__ = ["free_port_pair"]


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port number free for both UDP and TCP on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")
