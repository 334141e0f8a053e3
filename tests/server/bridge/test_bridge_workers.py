"""With workers, a bridge lives in the process that handled the INVITE: its bridged
dialogs are record-routed with that worker's index (`;pin=INDEX`), and another
worker that the kernel gives one of the dialog's later requests hands it to that
worker over the node's channel, so a BYE from anywhere closes the bridge; other
dialogs carry no pin (docs/architecture.md "Workers", "Media bridge")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bridge_sip import answering, register
from server_helpers import eventually, server_target, two_workers
from service_calls import HOST, add_users
from sipua import Dialog, TestUA
from test_bridge_plan import BARESIP, CHROMIUM
from test_bridge_signalling import ANSWER, invite

from sipline.core.message import Request, parse_message
from sipline.runtime.siblings import pinned_worker
from sipline.server.bridge.webrtc import use_media_address
from sipline.server.sip_server import SipServer
from sipline.transport.shared import probe

CALLS = 6  # BYEs from fresh ports: with two workers, some reach the other one


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[SipServer]]:
    use_media_address([HOST])
    db = tmp_path / "workers.db"
    add_users(db, ["alice", "bob"])
    port = probe("UDP", HOST, 0)
    listeners = [("UDP", port)]
    async with two_workers(db, lambda _: listeners, channel_dir=tmp_path / "channel") as started:
        yield started


def test_the_pin_is_read_from_the_top_route_only() -> None:
    def request(routes: str) -> Request:
        message = parse_message(
            (
                "BYE sip:bob@127.0.0.9 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKx\r\n"
                f"{routes}From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\n"
                "CSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        )
        assert isinstance(message, Request)
        return message

    pinned = request("Route: <sip:127.0.0.1:5060;pin=1;lr>, <sip:b@x;pin=3>\r\n")
    assert pinned_worker(pinned) == 1
    assert pinned_worker(request("Route: <sip:127.0.0.1:5060;lr>, <sip:b@x;pin=3>\r\n")) is None
    assert pinned_worker(request("")) is None


@pytest.mark.parametrize(("offer", "bridged"), [(CHROMIUM, True), (BARESIP, False)])
async def test_bridged_dialogs_are_pinned_to_their_worker(
    workers: list[SipServer], offer: bytes, bridged: bool
) -> None:
    uas = await TestUA.start(server_target(workers[0]))
    uacs: list[TestUA] = []
    try:
        await register(uas, "bob", webrtc=False)
        uas.on_invite = answering(ANSWER if bridged else BARESIP)
        for _ in range(CALLS):
            uac = await TestUA.start(server_target(workers[0]))
            uacs.append(uac)
            dialog, _ = await invite(uac, offer)
            [record_route] = dialog.route_set
            assert (";pin=" in record_route) == bridged
            # The BYE comes from another port, so the kernel may give it to either
            # worker: the one without the bridge hands it over.
            other = await TestUA.start(server_target(workers[0]))
            uacs.append(other)
            moved = Dialog(other, dialog.invite, dialog.answer)
            assert (await moved.bye()).final.status == 200

        def closed() -> bool:
            return all(w.bridges is not None and len(w.bridges) == 0 for w in workers)

        await eventually(closed)
        opened = sum(w.bridges.opened for w in workers if w.bridges is not None)
        assert opened == (CALLS if bridged else 0)
    finally:
        for ua in (uas, *uacs):
            await ua.close()
