"""A pyVoIP 1.6 phone (PyPI `pyVoIP`), run as its own process by the interop tests: it
registers, calls NUMBER, waits for the answer, holds the call for a second and hangs
up, printing `STATE <name>` lines. pyVoIP sends its 2xx ACK to the callee's address
of record (`ACK sip:bob@SERVER`), with no Route.

    python pyvoip_agent.py SERVER PORT USER PASSWORD SIP_PORT RTP_LOW NUMBER SECONDS
"""

from __future__ import annotations

import sys
import time
import warnings


def main(argv: list[str]) -> int:
    server, port, user, password, sip_port, rtp_low, number, seconds = argv
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pyVoIP imports audioop
        from pyVoIP.VoIP import CallState, VoIPPhone  # noqa: PLC0415

    phone = VoIPPhone(
        server, int(port), user, password, myIP="127.0.0.1", sipPort=int(sip_port),
        rtpPortLow=int(rtp_low), rtpPortHigh=int(rtp_low) + 20,
    )  # fmt: skip
    deadline = time.monotonic() + float(seconds)
    answered = False
    phone.start()
    try:
        print("STATE registered", flush=True)
        call = phone.call(number)
        while time.monotonic() < deadline:
            if call.state == CallState.ANSWERED:
                answered = True
                print("STATE answered", flush=True)
                time.sleep(1.0)
                call.hangup()
                print("STATE hung-up", flush=True)
                break
            if call.state == CallState.ENDED:
                print("STATE ended", flush=True)
                break
            time.sleep(0.05)
    finally:
        phone.stop()
    return 0 if answered else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
