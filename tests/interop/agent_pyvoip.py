"""A pyVoIP phone that registers, for the interop tests:
`agent_pyvoip.py SERVER_PORT LOCAL_PORT USER PASSWORD`.

pyVoIP 1.6 takes the server's address as its domain (To: USER@SERVER), so the server
it registers at serves the domain 127.0.0.1. Prints `registered` (or `failed STATUS`),
keeps the registration until stdin closes, then stops (which unregisters).
"""

from __future__ import annotations

import sys
import time

from pyVoIP.VoIP import PhoneStatus, VoIPPhone


def main() -> None:
    server_port, local_port = int(sys.argv[1]), int(sys.argv[2])
    user, password = sys.argv[3:5]
    phone = VoIPPhone(
        "127.0.0.1",
        server_port,
        user,
        password,
        myIP="127.0.0.1",
        sipPort=local_port,
        rtpPortLow=local_port + 2,
        rtpPortHigh=local_port + 12,
    )
    phone.start()
    deadline = time.monotonic() + 20
    done = (PhoneStatus.REGISTERED, PhoneStatus.FAILED)  # FAILED: it gave up retrying
    while phone.get_status() not in done and time.monotonic() < deadline:
        time.sleep(0.1)
    status = phone.get_status()
    print("registered" if status == PhoneStatus.REGISTERED else f"failed {status}", flush=True)
    sys.stdin.read()  # until the test closes stdin
    if status != PhoneStatus.FAILED:
        phone.stop()


if __name__ == "__main__":
    main()
