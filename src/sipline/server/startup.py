"""What starting a server needs before there is one: its error, a worker's setup, the
`[tls]` section and the TLS context. Apart from `sipline.server.sip_server` so that the supervising process of
`sipline serve --workers N`, which serves no traffic, imports neither the server nor
its applications (each would cost it memory it never uses)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sipline.server.config_values import ConfigError, path, setting
from sipline.storage.aio import AsyncStore
from sipline.storage.base import DuplicateError

__all__ = ["ServeError", "TlsSection", "WorkerSetup", "record_domains", "tls_context"]

log = logging.getLogger("sipline.server")


class ServeError(Exception):
    """The server cannot start (a port is taken, a certificate cannot be read, ...)."""


@dataclass(slots=True)
class WorkerSetup:
    """What the supervising process hands one worker (docs/architecture.md "Workers"):
    its index (also its owner id for subscriptions, stable across restarts), how
    many workers there are, the digest nonce secret shared by every worker, one
    SO_REUSEPORT socket per configured listener (in the order of `config.listen`),
    its end of the channel between the workers (an AF_UNIX datagram socket, and the
    directory where every worker's is; transport/channel.py), and the media host's
    socket and port (server/media_services/setup.py)."""

    index: int
    secret: bytes
    sockets: list[socket.socket]
    count: int = 1
    channel: socket.socket | None = None
    channel_dir: str | None = None
    # The media host's loopback UDP socket (worker 0 only) and its port (every worker).
    media_socket: socket.socket | None = None
    media_port: int = 0
    http: socket.socket | None = None  # worker 0: the HTTP listener's socket ([http] listen)


@dataclass(frozen=True, slots=True)
class TlsSection:
    """[tls]: the TLS listeners' certificate and key (none: a self-signed pair)."""

    cert: Path | None = setting(None, path)
    key: Path | None = setting(None, path)

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError("tls.cert: tls.cert and tls.key go together")


def tls_context(tls: TlsSection, database: Path) -> ssl.SSLContext:
    """The TLS listeners' context: the configured certificate, else a self-signed one
    generated once beside the database (by the supervising process, with workers)."""
    # Only with a TLS listener: it loads the cryptography package.
    from sipline.transport.tls import generate_self_signed, server_context  # noqa: PLC0415

    cert, key = tls.cert, tls.key
    if cert is None or key is None:
        folder = Path(database).resolve().parent / "sipline-tls"
        cert, key = folder / "cert.pem", folder / "key.pem"
        if not cert.exists() or not key.exists():
            _self_signed(folder, generate_self_signed)
    try:
        return server_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"tls.cert/tls.key: cannot load {cert} and {key}: {exc}") from exc


async def record_domains(store: AsyncStore, domains: Iterable[str]) -> None:
    """Domains named in the configuration are ours: record them so that `sipline user
    add` accepts users in them (the supervisor and every worker do; the first wins)."""
    known = set(await store.list_domains())
    for domain in domains:
        if domain not in known:
            with contextlib.suppress(DuplicateError):  # another process was first
                await store.write(store.store.add_domain, domain)


def _self_signed(folder: Path, generate: Callable[[Path, Path], None]) -> None:
    """Make the pair in a folder of our own, then rename it into place: nodes sharing
    the database's directory and starting at once never load one's certificate with
    another's key (the rename of a directory fails when the other was first)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    generate(own / "cert.pem", own / "key.pem")
    try:
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()  # an empty one left behind
        own.rename(folder)
    except OSError:
        shutil.rmtree(own, ignore_errors=True)  # another process made it first
        if not (folder / "cert.pem").exists() or not (folder / "key.pem").exists():
            generate(folder / "cert.pem", folder / "key.pem")  # a half-made folder
    else:
        log.info("generated a self-signed TLS certificate in %s", folder)
