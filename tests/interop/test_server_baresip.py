"""Two baresip softphones register through `sipline serve` with digest authentication
and call each other: the call connects, RTP flows both ways (each side records what it
decodes with baresip's sndfile module: the other side's tone), and BYE ends it.

What a new user does after reading the README ("A first call"), with real softphones
on loopback and a server with default settings (only `--domain`). baresip 1.0.0 (libre)
knows only MD5 digests and gives up on a 401 whose first challenge is anything else
("Function not implemented"): the default challenge, MD5 alone, lets it in."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from interop_helpers import HOST, ServeProcess, checked, free_port_pair, start_serve
from ua_baresip import Baresip

from sipline.media.audio import tone
from sipline.media_io.audio_files import write_wav
from sipline.storage import SqliteStore

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
TONE_HZ = {"alice": 440.0, "bob": 660.0}


def dominant_hz(samples: np.ndarray, rate: int = 8000) -> float:
    """Which of the two tones is the stronger in `samples` (by its spectral power)."""
    x = samples.astype(np.float64)
    t = np.arange(len(x)) / rate

    def power(hz: float) -> float:
        return float(abs(np.dot(x, np.exp(-2j * np.pi * hz * t))) ** 2)

    return max(TONE_HZ.values(), key=power)


def agent(name: str, tmp_path: Path, server: ServeProcess) -> Baresip:
    microphone = tmp_path / f"{name}-tone.wav"
    write_wav(microphone, tone(TONE_HZ[name], duration_s=10.0, amplitude=0.25))
    return Baresip(
        name,
        tmp_path,
        account=(
            f'<sip:{name}@{DOMAIN}>;auth_pass={name}-pw;outbound="sip:{HOST}:{server.port}"'
            ";answermode=auto;regint=600;audio_codecs=PCMU"
        ),
        microphone=microphone,
        rtp_base=free_port_pair() & ~1,
    )


def registered(server: ServeProcess) -> set[str]:
    store = SqliteStore(server.workdir / "sipline.db")
    try:
        return {b.aor for b in store.all_bindings()}
    finally:
        store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    if shutil.which("baresip") is None:
        pytest.skip("baresip is not installed (scripts/install-peers.sh installs it)")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for name in TONE_HZ:
        store.add_user(name, DOMAIN, f"{name}-pw")
    store.close()
    proc = start_serve(workdir, tls=False, domains=(DOMAIN,))
    with checked(proc):
        yield proc


def test_two_baresip_agents_register_and_call(server: ServeProcess, tmp_path: Path) -> None:
    alice = agent("alice", tmp_path, server)
    bob = agent("bob", tmp_path, server)
    try:
        # Registration often ends before ctrl_tcp is connected (its REGISTER_OK event
        # is gone by then): watch the location service instead.
        deadline = time.monotonic() + 15
        while registered(server) != {f"alice@{DOMAIN}", f"bob@{DOMAIN}"}:
            assert time.monotonic() < deadline, (registered(server), alice.log())
            time.sleep(0.2)

        alice.command("dial", f"sip:bob@{DOMAIN}")
        alice.wait_event("CALL_ESTABLISHED")
        bob.wait_event("CALL_ESTABLISHED")
        time.sleep(3.0)  # three seconds of audio each way
        alice.command("hangup")
        alice.wait_event("CALL_CLOSED")
        bob.wait_event("CALL_CLOSED")  # the BYE went through the proxy
    finally:
        alice.stop()
        bob.stop()
    # Each side decoded the other's tone: RTP flowed both ways.
    for me, other in ((alice, "bob"), (bob, "alice")):
        decoded = me.decoded()
        assert len(decoded) > 1.5 * 8000, (me.name, len(decoded))
        assert dominant_hz(decoded) == TONE_HZ[other], me.name
