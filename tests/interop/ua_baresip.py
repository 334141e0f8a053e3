"""baresip on loopback for the user agent interop tests: one config directory per agent,
a WAV file as its microphone (aufile), what it decodes recorded by sndfile, driven over
ctrl_tcp (netstring JSON commands and events). Bounded by `timeout -k`, stopped by PID.

Measured facts: baresip 1.0.0 answers digest only with MD5 and gives up when the first
challenge is another algorithm (the server's default, MD5 alone, suits it); it opens
TLS on its SIP port + 1.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from interop_helpers import HOST, free_port_pair, free_tcp_port, need

from sipline.media_io.audio_files import read_wav


def _sip_port() -> int:
    """A port free for UDP and TCP whose successor is free too: baresip listens for
    TLS on its SIP port + 1."""
    for _ in range(50):
        port = free_port_pair()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
            try:
                tls.bind((HOST, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for baresip")


class Baresip:
    """One baresip agent. `account` is its accounts line (see the fixture)."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        account: str,
        microphone: Path,
        rtp_base: int,
        lifetime_s: int = 60,
        extra_modules: tuple[str, ...] = (),
        contacts: str = "",
    ) -> None:
        self.name = name
        self.dir = workdir / f"baresip-{name}"
        self.dir.mkdir(parents=True)
        self.records = self.dir / "records"
        self.records.mkdir()
        self.ctrl_port = free_tcp_port()
        self.sip_port = _sip_port()
        modules = ["g711.so", "aufile.so", "aubridge.so", "sndfile.so", *extra_modules]
        lines = [
            f"sip_listen {HOST}:{self.sip_port}",
            f"net_interface {HOST}",
            f"dns_server {HOST}:53",
            f"rtp_ports {rtp_base}-{rtp_base + 19}",
            "audio_player aubridge,nil",
            "audio_alert aubridge,nil",
            f"audio_source aufile,{microphone}",
            "module_path /usr/lib/baresip/modules",
            *(f"module {m}" for m in modules),
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
            f"snd_path {self.records}",
            "",
        ]
        (self.dir / "config").write_text("\n".join(lines), encoding="utf-8")
        (self.dir / "accounts").write_text(account + "\n", encoding="utf-8")
        (self.dir / "contacts").write_text(contacts, encoding="utf-8")
        self._log = (self.dir / "baresip.log").open("wb")
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", str(lifetime_s), need("baresip"), "-f", str(self.dir)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        try:
            self.sock = self._connect()
        except BaseException:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self._log.close()
            raise
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@{HOST}:{self.sip_port}"

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            try:
                return socket.create_connection((HOST, self.ctrl_port), timeout=1)
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"{self.name}: no ctrl_tcp\n{self.log()}") from None
                time.sleep(0.1)

    def _read(self) -> None:
        buffer = b""
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buffer += data
            while b":" in buffer:  # netstrings: LEN ":" JSON ","
                length, _, rest = buffer.partition(b":")
                if not length.isdigit() or len(rest) < int(length) + 1:
                    break
                body, buffer = rest[: int(length)], rest[int(length) + 1 :]
                with self._cond:
                    self.events.append(json.loads(body))
                    self._cond.notify_all()

    def command(self, name: str, params: str = "") -> None:
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))

    def wait_event(self, kind: str, timeout: float = 15.0, after: int = 0) -> dict[str, Any]:
        """The first event of `kind` from index `after` on."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if event.get("type") == kind:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [e.get("type") for e in self.events]
                    raise AssertionError(f"{self.name}: no {kind}; events {kinds}\n{self.log()}")
                self._cond.wait(left)

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(full=True):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {text!r} in its log\n{self.log()}")
            time.sleep(0.1)

    def log(self, *, full: bool = False) -> str:
        self._log.flush()
        text = (self.dir / "baresip.log").read_text(errors="replace")
        return text if full else text[-3000:]

    def decoded(self) -> Any:
        """What baresip decoded from us in its last call (sndfile's *-dec.wav)."""
        files = sorted(self.records.glob("*-dec.wav"))
        assert files, f"{self.name} recorded nothing: {list(self.records.iterdir())}"
        return read_wav(files[-1], target_rate=None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                self.proc.wait(timeout=10)
        self.sock.close()
        self._reader.join(timeout=5)
        self._log.close()
