"""The ceiling for Python on this machine: a blocking recvfrom/sendto loop that answers
every OPTIONS with a 200 OK, copying Via, From, To, Call-ID and CSeq and parsing nothing
else. No transactions, no validation, no event loop.

`python -m benchmarks.raw_responder PORT` (127.0.0.1).
"""

from __future__ import annotations

import socket
import sys

_ALLOW = b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
_COPY = (b"via:", b"from:", b"to:", b"call-id:", b"cseq:", b"v:", b"f:", b"t:", b"i:")


def answer(data: bytes) -> bytes:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    out = [b"SIP/2.0 200 OK"]
    out.extend(line for line in head[1:] if line[:9].lower().startswith(_COPY))
    out.append(_ALLOW)
    out.append(b"Content-Length: 0\r\n\r\n")
    return b"\r\n".join(out)


def main() -> None:
    port = int(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", port))
    print("ready", flush=True)
    recv, send = sock.recvfrom, sock.sendto
    while True:
        data, addr = recv(65535)
        send(answer(data), addr)


if __name__ == "__main__":
    main()
