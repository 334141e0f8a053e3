"""Softphones and SIP tools as users run them, driven without a terminal, for the
registration and first-call interop tests: linphone-cli (`linphonec`), twinkle-console,
and the Python agents (pjsua2, pyVoIP) run as child processes by `agent_*.py`.

Each client gets its own temporary HOME (they write their state there) and its own
free loopback ports, so these tests run in parallel with others. Every process is
bounded by `timeout -k` and stopped by its own PID.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from interop_helpers import HOST, free_port_pair, need

AGENTS = Path(__file__).parent


class Console:
    """A child process fed commands on stdin; its output is collected line by line."""

    def __init__(self, args: list[str], *, home: Path, lifetime_s: int, cwd: Path) -> None:
        self.home = home
        self.lines: list[str] = []
        self._cond = threading.Condition()
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", str(lifetime_s), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_output(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {text!r} in the output:\n{self.output()}")
                self._cond.wait(min(left, 0.2))

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-60:])

    def stop(self, quit_command: str = "quit") -> None:
        if self.proc.poll() is None:
            try:
                self.send(quit_command)
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=8)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def linphonec(
    name: str,
    workdir: Path,
    *,
    domain: str,
    password: str,
    server_port: int,
    auto_answer: bool = False,
    lifetime_s: int = 60,
) -> Console:
    """linphone-cli with one account, as the README's "A first call" says: account
    sip:NAME@DOMAIN, the password, outbound proxy / registrar the server's address.
    linphonec 5.1 sets up no transport unless ~/.local/share/linphone exists."""
    home = workdir / f"linphone-{name}"
    (home / ".local" / "share" / "linphone").mkdir(parents=True)
    sip_port = free_port_pair()
    rtp_port = free_port_pair() & ~1
    proxy = f"sip:{HOST}:{server_port};transport=udp"
    rc = home / "linphonerc"
    rc.write_text(
        "\n".join(
            [
                "[sip]",
                f"sip_port={sip_port}",
                "sip_tcp_port=-1",  # random: no fixed 5060 shared with other tests
                "sip_tls_port=-1",
                f"bind_address={HOST}",
                f"contact=sip:{name}@{HOST}:{sip_port}",
                "register_only_when_network_is_up=0",
                "use_ipv6=0",
                "[net]",
                "mtu=1300",
                "[rtp]",
                f"audio_rtp_port={rtp_port}",
                f"video_rtp_port={rtp_port + 2}",
                "[sound]",
                "playback_dev_id=Null: Null",
                "ringer_dev_id=Null: Null",
                "capture_dev_id=Null: Null",
                "[proxy_0]",
                f"reg_proxy=<{proxy}>",
                f"reg_route=<{proxy};lr>",
                f"reg_identity=sip:{name}@{domain}",
                "reg_expires=600",
                "reg_sendregister=1",
                "publish=0",
                "[auth_info_0]",
                f"username={name}",
                f"passwd={password}",
                f"realm={domain}",
                f"domain={domain}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    args = [need("linphonec"), "-c", str(rc), "-d", "0"]
    if auto_answer:
        args.append("-a")
    return Console(args, home=home, lifetime_s=lifetime_s, cwd=home)


def twinkle(
    name: str,
    workdir: Path,
    *,
    domain: str,
    password: str,
    server_port: int,
    lifetime_s: int = 60,
) -> Console:
    """twinkle-console with one profile (~/.twinkle/NAME.cfg) in a temporary HOME. Its
    sockets listen on every address (it has no setting to bind one); it talks to the
    server on loopback only."""
    need("twinkle-console")
    home = workdir / f"twinkle-{name}"
    config = home / ".twinkle"
    config.mkdir(parents=True)
    (config / "twinkle.sys").write_text(
        f"sip_port={free_port_pair()}\nrtp_port={free_port_pair() & ~1}\nvalidate_audio_dev=no\n",
        encoding="utf-8",
    )
    (config / f"{name}.cfg").write_text(
        "\n".join(
            [
                f"user_name={name}",
                f"user_domain={domain}",
                f"auth_realm={domain}",
                f"auth_name={name}",
                f"auth_pass={password}",
                f"outbound_proxy={HOST}:{server_port}",
                "all_requests_to_proxy=yes",
                "register_at_startup=yes",
                "registration_time=600",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return Console(
        [need("twinkle-console"), f"{name}.cfg"], home=home, lifetime_s=lifetime_s, cwd=home
    )


def python_agent(
    script: str, workdir: Path, *args: str, lifetime_s: int = 60, name: str = "agent"
) -> Console:
    """One of the `agent_*.py` scripts beside this file, in this interpreter; it prints
    its progress and ends when its stdin closes."""
    home = workdir / f"{name}-home"
    home.mkdir(parents=True)
    return Console(
        [sys.executable, "-I", str(AGENTS / script), *args],
        home=home,
        lifetime_s=lifetime_s,
        cwd=home,
    )
