"""With workers, a bridge lives in the process that handled the INVITE: its bridged
dialogs are record-routed through that worker's private UDP port, so their re-INVITEs
and BYEs come back to the bridge; other dialogs name the public port as before
(docs/architecture.md "Workers", "Media bridge")."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_helpers import configured, eventually, server_target
from service_calls import DOMAIN, HOST, add_users
from sipua import TestUA
from test_bridge_plan import BARESIP, CHROMIUM
from test_bridge_signalling import ANSWER, answering, invite, register

from sipline.server.bridge.webrtc import use_media_address
from sipline.server.config import parse_listen
from sipline.server.sip_server import SipServer, WorkerSetup
from sipline.transport.shared import private_udp_socket, probe, shared_socket


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[SipServer]:
    use_media_address([HOST])
    db = tmp_path / "worker.db"
    add_users(db, ["alice", "bob"])
    port = probe("UDP", HOST, 0)
    cfg = configured(listen=[parse_listen(f"udp:{HOST}:{port}")], domains=[DOMAIN], database=db)
    setup = WorkerSetup(
        index=1,
        secret=os.urandom(32),
        sockets=[shared_socket("UDP", HOST, port, 1 << 20)],
        private=[(HOST, private_udp_socket(HOST, 1 << 20))],
    )
    server = SipServer(cfg, worker=setup)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(("offer", "bridged"), [(CHROMIUM, True), (BARESIP, False)])
async def test_bridged_dialogs_are_pinned_to_their_worker(
    worker: SipServer, offer: bytes, bridged: bool
) -> None:
    public = worker.endpoint.local_address("UDP")
    private = worker.endpoint.local_address("UDP", via=True)
    assert private.private and private.port != public.port
    uac = await TestUA.start(server_target(worker))
    uas = await TestUA.start(server_target(worker))
    try:
        await register(uas, "bob", webrtc=False)
        uas.on_invite = answering(ANSWER if bridged else BARESIP)
        dialog, _ = await invite(uac, offer)
        [record_route] = dialog.route_set
        port = private.port if bridged else public.port
        assert f"{HOST}:{port};" in record_route
        # The BYE follows the Record-Route to this worker, which closes the bridge.
        assert (await dialog.bye()).final.status == 200
        assert worker.bridges is not None
        await eventually(lambda: worker.bridges is not None and len(worker.bridges) == 0)
        assert worker.bridges.opened == (1 if bridged else 0)
    finally:
        await uac.close()
        await uas.close()
