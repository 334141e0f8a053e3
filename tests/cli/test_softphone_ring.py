"""`sipline answer --ring N`: a CANCEL ends the ringing at once, and SIGTERM ends the
program promptly, whatever N is (real processes)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from softphone_helpers import HOST, Process, free_port


def _ringing_pair(port: int) -> tuple[Process, Process]:
    answer = Process(
        "answer", "--user", "bob@example.com", "--listen", f"{HOST}:{port}", "--ring", "30",
        seconds=40,
    )  # fmt: skip
    answer.wait_line("waiting for calls")
    call = Process(
        "call", f"sip:bob@{HOST}:{port}", "--user", "alice@example.com", "--listen", f"{HOST}:0",
        seconds=40,
    )  # fmt: skip
    call.wait_line("ringing 180")
    answer.wait_line("incoming call")
    return answer, call


def _child(pid: int) -> int:
    """The one child of the timeout(1) process `pid`: the sipline command."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_cancel_ends_the_ringing_at_once() -> None:
    answer, call = _ringing_pair(free_port())
    try:
        began = time.monotonic()
        call.proc.terminate()  # the caller gives up: CANCEL (RFC 3261 §9.1)
        line = answer.wait_line("ended:", timeout=5)
        assert time.monotonic() - began < 3, answer.text()
        assert "cancelled by the caller" in line, answer.text()
        assert answer.proc.poll() is None or answer.proc.returncode == 0  # next call, or done
        answer.finish(timeout=5)
        assert answer.proc.returncode == 0, answer.text()
    finally:
        call.stop()
        answer.stop()


def test_sigterm_while_ringing_ends_promptly() -> None:
    answer, call = _ringing_pair(free_port())
    try:
        began = time.monotonic()
        # To the program itself: timeout(1), which wraps it, would pass the signal on
        # and then send it to the whole process group again, so that a second SIGTERM
        # could land during the interpreter's shutdown.
        os.kill(_child(answer.proc.pid), signal.SIGTERM)
        answer.finish(timeout=10)
        took = time.monotonic() - began
        assert took < 2, (took, answer.text())
        assert answer.proc.returncode == 0, (answer.proc.returncode, answer.text())
        assert not any("Traceback" in line for line in answer.errors), answer.text()
        # The caller hears that we are gone rather than ringing on (480 from the reject).
        call.finish(timeout=10)
        assert "480" in call.text(), call.text()
    finally:
        call.stop()
        answer.stop()
