"""`sipline call urn:service:sos` and dialled emergency numbers through a real
`sipline serve`: the INVITE's Request-URI is the service URN (RFC 5031, RFC 6881 §9.3)
and the server routes it to the PSAP of its [emergency] settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_procs import HOST, Proc, free_port, serving


@pytest.mark.parametrize("target", ["urn:service:sos", "urn:service:sos.police", "112", "911"])
def test_an_emergency_call_reaches_the_psap(tmp_path: Path, target: str) -> None:
    psap_port = free_port()
    config = f'[emergency]\npsap = "sip:psap@{HOST}:{psap_port}"\n'
    with serving(tmp_path / "serve", config) as port:
        psap = Proc("answer", "--user", "psap@example.com", "--listen", f"{HOST}:{psap_port}",
                    "--duration", "0.5", "--json")  # fmt: skip
        try:
            psap.wait_for('"event": "waiting"')
            call = Proc("call", target, "--user", "alice@example.com", "--password", "alice-pw",
                        "--server", f"{HOST}:{port}", "--listen", f"{HOST}:0",
                        "--duration", "0.5", "--json")  # fmt: skip
            assert call.finish() == 0, call.stdout + call.stderr
            assert psap.finish() == 0, psap.stderr
        finally:
            psap.stop()
    events = [json.loads(line) for line in call.out]
    assert events[0] == {"event": "calling", "target": target, "uri": _urn(target)}
    assert "answered" in [e["event"] for e in events], call.stdout
    incoming = next(json.loads(line) for line in psap.out if '"incoming"' in line)
    assert incoming["peer"] == "sip:alice@example.com"
    # The proxy retargets the Request-URI to the PSAP; To keeps the URN the caller sent.
    assert incoming["to"] == _urn(target)


def _urn(target: str) -> str:
    return target if target.startswith("urn:") else "urn:service:sos"


def test_a_urn_needs_a_server_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    alone = Proc("call", "urn:service:sos", "--user", "alice@example.com", "--listen", f"{HOST}:0")
    assert alone.finish() == 2
    assert alone.err == ["sipline: calling urn:service:sos needs a server (--server) to route it"]
    assert alone.out == []
    bad = Proc("call", "urn:service:sos..x", "--user", "alice@example.com",
               "--server", f"{HOST}:9", "--listen", f"{HOST}:0")  # fmt: skip
    assert bad.finish() == 2
    assert len(bad.err) == 1 and "is not a service URN (RFC 5031" in bad.err[0], bad.err


def test_without_a_psap_or_for_another_service_the_caller_hears_why(tmp_path: Path) -> None:
    with serving(tmp_path / "serve") as port:
        ended = {}
        for target in ("urn:service:sos", "urn:service:counseling"):
            call = Proc("call", target, "--user", "alice@example.com", "--password", "alice-pw",
                        "--server", f"{HOST}:{port}", "--listen", f"{HOST}:0", "--json")  # fmt: skip
            assert call.finish() == 1, call.stdout + call.stderr
            ended[target] = json.loads(call.out[-1])
    # An emergency call is never challenged: refused only for want of a PSAP (503);
    # a service this server does not offer is an unsupported URI (416).
    assert ended["urn:service:sos"]["status"] == 503
    assert "no emergency destination configured" in ended["urn:service:sos"]["reason"]
    assert ended["urn:service:counseling"]["status"] == 416
