"""The media bridge with sipline's own commands as the plain phone, through `sipline
serve`: a browser's media (an aiortc peer connection behind a small SIP client) calls
`sipline answer --record`, and `sipline call` calls the browser. Each side's tone is
found in the other's recording (the WAV the command wrote, the peer's received track)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import HOST, ServeProcess, start_serve
from test_bridge_baresip import BROWSER_HZ, DOMAIN, PHONE_HZ, hears, registered

from sipline.media.audio import tone
from sipline.media_io.audio_files import read_wav, write_wav
from sipline.runtime.endpoint import ServerTransaction
from sipline.server.bridge.plan import SdpKind, sdp_kind
from sipline.server.bridge.webrtc import use_media_address
from sipline.storage import SqliteStore
from sipline.transport import Target

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).parents[1] / "server" / "bridge"))
from sipua import Dialog, TestUA
from webrtc_peer import RATE, BrowserPeer

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for name in ("alice", "bob"):
        store.add_user(name, DOMAIN, f"{name}-pw")
    store.close()
    proc = start_serve(workdir, tls=False, domains=(DOMAIN,))
    try:
        yield proc
        assert proc.alive(), "\n".join(proc.lines[-20:])
    finally:
        code = proc.stop()
    assert code == 0, "\n".join(proc.lines[-20:])


async def sipline(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from sipline.cli.main import main; main()",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def account(server: ServeProcess, tmp_path: Path) -> list[str]:
    microphone = tmp_path / "phone-tone.wav"
    write_wav(microphone, tone(PHONE_HZ, duration_s=20.0, amplitude=0.25))
    return [
        "--user", f"bob@{DOMAIN}", "--password", "bob-pw", "--server", f"{HOST}:{server.port}",
        "--listen", f"{HOST}:0", "--play", str(microphone), "--record", str(tmp_path / "rec.wav"),
    ]  # fmt: skip


async def finished(proc: asyncio.subprocess.Process) -> str:
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    return text


async def test_a_browser_calls_sipline_answer(server: ServeProcess, tmp_path: Path) -> None:
    use_media_address([HOST])
    answer = await sipline("answer", *account(server, tmp_path), "--duration", "4")
    browser = BrowserPeer(BROWSER_HZ)
    ua = await TestUA.start(Target("UDP", HOST, server.port))
    try:
        await registered(server, f"bob@{DOMAIN}")
        invite = ua.build(
            "INVITE",
            f"sip:bob@{DOMAIN}",
            from_=f"alice@{DOMAIN}",
            to=f"bob@{DOMAIN}",
            contact=ua.contact("alice"),
            body=await browser.offer(),
        )
        exchange = await ua.send_authenticated(invite, "alice", "alice-pw")
        assert exchange.final.status == 200 and sdp_kind(exchange.final.body) is SdpKind.WEBRTC
        Dialog(ua, exchange.request, exchange.final).ack()
        await browser.accept(exchange.final.body)
        await ua.wait_for(lambda: bool(ua.requests("BYE")), timeout=15)  # --duration 4
        await finished(answer)
    finally:
        if answer.returncode is None:
            answer.terminate()
            await answer.wait()
        await browser.close()
        await ua.close()
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)


async def test_sipline_call_calls_a_browser(server: ServeProcess, tmp_path: Path) -> None:
    use_media_address([HOST])
    browser = BrowserPeer(BROWSER_HZ)
    ua = await TestUA.start(Target("UDP", HOST, server.port))

    async def answer(ua: TestUA, st: ServerTransaction) -> None:
        body = await browser.answer(st.request.body)
        st.respond(
            200,
            extra=[("Contact", f"<{ua.contact('alice')}>")],
            body=body,
            content_type="application/sdp",
            copy_record_route=True,
        )

    ua.on_invite = answer
    call = None
    try:
        request = ua.build(
            "REGISTER",
            f"sip:{DOMAIN}",
            from_=f"alice@{DOMAIN}",
            extra=[("Contact", f"<{ua.contact('alice')}>;+sip.ice"), ("Expires", "600")],
        )
        assert (await ua.send_authenticated(request, "alice", "alice-pw")).final.status == 200
        # With --workers, the others see the binding at their next change-feed poll (20 ms).
        await asyncio.sleep(0.2)
        call = await sipline(
            "call", f"sip:alice@{DOMAIN}", *account(server, tmp_path), "--duration", "3"
        )
        await finished(call)
        assert [sdp_kind(st.request.body) for st in ua.received if st.request.method == "INVITE"]
        assert sdp_kind(ua.requests("INVITE")[0].body) is SdpKind.WEBRTC
        assert ua.requests("BYE")
    finally:
        if call is not None and call.returncode is None:
            call.terminate()
            await call.wait()
        await browser.close()
        await ua.close()
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)
