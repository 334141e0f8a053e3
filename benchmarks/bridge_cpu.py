"""What one bridged call costs `sipline serve`: a browser's media (aiortc, Opus) calls
`sipline answer` (PCMU) through a single-process server; the server's CPU time over
ten seconds of the call, less its idle CPU time over ten seconds before it.

Run from the repository: ``.venv/bin/python -m benchmarks.bridge_cpu``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

_TESTS = Path(__file__).parents[1] / "tests"  # the test suite's peers and helpers
sys.path.insert(0, str(_TESTS / "interop"))
sys.path.insert(0, str(_TESTS / "server"))
sys.path.insert(0, str(_TESTS / "server" / "bridge"))

from interop_helpers import HOST, start_serve
from sipua import Dialog, TestUA
from webrtc_peer import BrowserPeer

from sipline.server.bridge.webrtc import use_media_address
from sipline.storage import SqliteStore
from sipline.transport import Target

SECONDS = 10.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(work: Path) -> str:
    use_media_address([HOST])
    store = SqliteStore(work / "sipline.db")
    store.add_domain("example.com")
    for user in ("alice", "bob"):
        store.add_user(user, "example.com", f"{user}-pw")
    store.close()
    server = start_serve(work, tls=False, workers=1, domains=("example.com",))
    answer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from sipline.cli.main import main; main()", "answer",
        "--user", "bob@example.com", "--password", "bob-pw", "--server", f"{HOST}:{server.port}",
        "--listen", f"{HOST}:0", "--duration", str(SECONDS + 5),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    ua = await TestUA.start(Target("UDP", HOST, server.port))
    browser = BrowserPeer(440)
    try:
        await asyncio.sleep(3.0)
        before = cpu_s(server.pid)
        await asyncio.sleep(SECONDS)
        idle = cpu_s(server.pid) - before
        invite = ua.build(
            "INVITE", "sip:bob@example.com", from_="alice@example.com", to="bob@example.com",
            contact=ua.contact("alice"), body=await browser.offer(),
        )  # fmt: skip
        exchange = await ua.send_authenticated(invite, "alice", "alice-pw")
        Dialog(ua, exchange.request, exchange.final).ack()
        await browser.accept(exchange.final.body)
        await asyncio.sleep(1.0)
        before = cpu_s(server.pid)
        await asyncio.sleep(SECONDS)
        busy = cpu_s(server.pid) - before
    finally:
        await browser.close()
        await ua.close()
        await answer.wait()
        server.stop()
    return (
        f"idle: {idle / SECONDS:.1%} of a core; one bridged call (Opus <-> PCMU): "
        f"{(busy - idle) / SECONDS:.1%} of a core more"
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        print(asyncio.run(measure(Path(folder))))
