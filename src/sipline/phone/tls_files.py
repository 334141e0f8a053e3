"""A user agent's own TLS certificate for one run: the listener its Contact names over
TLS needs one (a peer may open a connection to it), made fresh in a private temporary
folder and removed on close."""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sipline.transport.tls import generate_self_signed, server_context

__all__ = ["TlsFiles"]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    folder: Path

    @classmethod
    def create(cls) -> TlsFiles:
        folder = Path(tempfile.mkdtemp(prefix="sipline-ua-tls-"))  # mode 0700
        generate_self_signed(folder / "cert.pem", folder / "key.pem")
        return cls(folder)

    def server_context(self) -> ssl.SSLContext:
        return server_context(self.folder / "cert.pem", self.folder / "key.pem")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
