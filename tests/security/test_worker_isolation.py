"""Worker processes import nothing from the working directory or the environment.

`python -c` puts the working directory first on sys.path, so a stray `asyncio.py` or
`enum.py` in the directory `sipline serve` was started from ran in every worker. Here
such modules (which leave a mark and refuse to load) lie in the working directory of a
real `sipline serve --workers 2`, started the way a user starts it (the console
script), and on PYTHONPATH of an interpreter started with the workers' flags."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "interop"))
from interop_helpers import HOST, start_serve

from sipline.cli.workers import WorkerCommand

pytestmark = pytest.mark.interop

# Builtins only: it may be imported before the modules it would need.
HOSTILE = "open(__file__ + '.ran', 'w').close()\nraise ImportError('hostile module imported')\n"
NAMES = ("asyncio", "enum", "json", "socket")


def plant(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        (directory / f"{name}.py").write_text(HOSTILE, encoding="utf-8")


def marks(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.ran"))


def options_answered(port: int) -> bytes:
    request = (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:5999;branch=z9hG4bK-iso;rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=iso\r\n"
        f"To: <sip:{HOST}:{port}>\r\nCall-ID: isolation\r\nCSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.bind((HOST, 0))
        for _ in range(5):
            sock.sendto(request, (HOST, port))
            try:
                return sock.recv(65535)
            except TimeoutError:
                continue
    raise AssertionError("no answer to OPTIONS")


@pytest.mark.slow
def test_workers_ignore_modules_in_the_working_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "serve"
    plant(workdir)
    script = Path(sys.executable).parent / "sipline"
    if not script.exists():
        pytest.skip("the sipline console script is not installed next to this interpreter")
    server = start_serve(workdir, tls=False, workers=2, launcher=[str(script)])
    try:
        assert options_answered(server.port).startswith(b"SIP/2.0 200")
        assert server.alive()
    finally:
        code = server.stop()
    assert marks(workdir) == [], "a worker imported a module from its working directory"
    assert code == 0, "\n".join(server.lines[-20:])


def test_worker_interpreter_ignores_cwd_pythonpath_and_startup(tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    plant(evil)
    startup = evil / "startup.py"
    startup.write_text(HOSTILE, encoding="utf-8")
    argv = WorkerCommand([]).argv(0)
    flags = argv[1 : argv.index("-c")]
    probe = "import asyncio, enum, json, socket, sys; print(sys.flags.isolated)"
    env = {"PYTHONPATH": str(evil), "PYTHONSTARTUP": str(startup), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [argv[0], *flags, "-c", probe],
        cwd=evil,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert marks(evil) == []
