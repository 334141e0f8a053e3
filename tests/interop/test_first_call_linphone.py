"""The README's "A first call", with linphone-cli, as written: a server started with
default settings (only `--domain`), two users, two `linphonec -c NAME.rc` whose files are
the README's block (with this test's ports); alice dials sip:bob@example.com, bob
answers, media is set up on both sides, alice hangs up and the BYE reaches bob through
the server. (tests/interop/test_server_baresip.py does the same with baresip.)"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from interop_helpers import HOST, free_port_pair, need, start_serve
from sip_clients import Console

from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]

README = Path(__file__).parents[2] / "README.md"
DOMAIN = "example.com"
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}
# Only for running beside other tests: loopback, free RTP ports, no sound card.
MACHINE = """
[rtp]
audio_rtp_port={rtp}
video_rtp_port={video}
[sound]
playback_dev_id=Null: Null
ringer_dev_id=Null: Null
capture_dev_id=Null: Null
"""


def readme_rc(name: str, server_port: int) -> str:
    """The README's linphonerc for `name`, on free ports, bound to loopback."""
    section = README.read_text(encoding="utf-8").split("## A first call", 1)[1]
    match = re.search(r"```ini\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README.md: no ini block under ## A first call"
    rc = match.group(1).replace("alice", name).replace("PASSWORD", PASSWORDS[name])
    rc = rc.replace("127.0.0.1:5060", f"{HOST}:{server_port}")
    rc = rc.replace("sip_port=5070", f"sip_port={free_port_pair()}\nbind_address={HOST}")
    rtp = free_port_pair() & ~1
    return rc + MACHINE.format(rtp=rtp, video=rtp + 2)


def registered(db: Path) -> set[str]:
    store = SqliteStore(db)
    try:
        return {b.aor for b in store.all_bindings()}
    finally:
        store.close()


def test_two_linphones_register_and_call_as_the_readme_says(tmp_path: Path) -> None:
    linphonec = need("linphonec")
    server = start_serve(tmp_path / "serve", tls=False, domains=(DOMAIN,))
    phones: list[Console] = []
    try:
        store = SqliteStore(server.workdir / "sipline.db")
        for name, password in PASSWORDS.items():
            store.add_user(name, DOMAIN, password)
        store.close()
        for name in PASSWORDS:
            home = tmp_path / name
            (home / ".local" / "share" / "linphone").mkdir(parents=True)  # as the README says
            rc = home / f"{name}.rc"
            rc.write_text(readme_rc(name, server.port), encoding="utf-8")
            phones.append(Console([linphonec, "-c", str(rc)], home=home, lifetime_s=60, cwd=home))
        alice, bob = phones
        deadline = time.monotonic() + 20
        while registered(server.workdir / "sipline.db") != {f"alice@{DOMAIN}", f"bob@{DOMAIN}"}:
            assert time.monotonic() < deadline, (alice.output(), bob.output())
            time.sleep(0.2)

        alice.send(f"call sip:bob@{DOMAIN}")
        bob.wait_output(f"Receiving new incoming call from sip:alice@{DOMAIN}")
        bob.send("answer")
        alice.wait_output(f"Call 1 with sip:bob@{DOMAIN} connected.")
        bob.wait_output(f"Call 1 with sip:alice@{DOMAIN} connected.")
        alice.wait_output(f"Media streams established with sip:bob@{DOMAIN}")
        bob.wait_output(f"Media streams established with sip:alice@{DOMAIN}")
        alice.send("terminate")
        alice.wait_output(f"Call 1 with sip:bob@{DOMAIN} ended")
        bob.wait_output(f"Call 1 with sip:alice@{DOMAIN} ended")  # the BYE went through
    finally:
        for phone in phones:
            phone.stop()
        alive = server.alive()
        code = server.stop()
    log = "\n".join(server.lines)
    assert alive and code == 0, log[-3000:]
    assert "Traceback" not in log, log
