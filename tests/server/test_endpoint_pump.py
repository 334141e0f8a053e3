"""The endpoint's pump is not reentrant: a burst of timeouts whose handlers send again
(as the proxy relays each 408 upstream) is worked off in a loop, not by recursion."""

from __future__ import annotations

import socket
import sys

from sipline.core.message import Request, Response, parse_message
from sipline.core.timers import TimerConfig
from sipline.runtime.endpoint import Endpoint, EndpointConfig
from sipline.testing import FakeClock, advance
from sipline.transport import Target

HOST = "127.0.0.1"
BURST = 3 * sys.getrecursionlimit()  # far deeper than the stack would allow


def options(i: int, port: int) -> Request:
    text = (
        f"OPTIONS sip:sink@{HOST}:{port} SIP/2.0\r\n"
        f"From: <sip:pump@{HOST}>;tag=p{i}\r\nTo: <sip:sink@{HOST}>\r\n"
        f"Call-ID: pump-{i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


async def test_a_burst_of_timeouts_whose_handlers_send_again_does_not_recurse() -> None:
    # A socket that never reads: requests to it are neither answered nor refused (ICMP).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((HOST, 0))
        sink_port = sink.getsockname()[1]
        target = Target("UDP", HOST, sink_port)
        # T1 = 10 ms: Timer F (64*T1, RFC 3261 §17.1.2.2) fires 0.64 s after each send.
        clock = FakeClock()
        ep = Endpoint(EndpointConfig(timers=TimerConfig(t1=0.01, t2=0.04, t4=0.05)), clock=clock)
        await ep.bind("UDP", HOST, 0)
        finals: list[int] = []
        resent: list[int] = []

        def on_final(i: int) -> object:
            def handle(response: Response) -> None:
                if response.status < 200:
                    return
                finals.append(response.status)
                if i >= 0:  # each first timeout sends once more, which pumps
                    resent.append(i)
                    ep.send_request(options(BURST + i, sink_port), target, on_response=on_final(-1))

            return handle

        try:
            for i in range(BURST):
                ep.send_request(options(i, sink_port), target, on_response=on_final(i))
            # Sent at the same instant: every Timer F falls due at once, at 0.64 s, and
            # each one resent times out at 1.28 s.
            await advance(clock, 1.3)
        finally:
            await ep.close()
    assert len(resent) == BURST
    assert finals.count(408) == 2 * BURST  # §8.1.3.1: a timeout reads as 408
