"""`sipline check` run as a user runs it: the installed console script, real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parents[1] / "data"
SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")

# Files a server must answer with an error or drop (RFC 4475 §3.1.2 and the §3.3 cases
# the RFC says are best refused outright; RFC 5118 §4.2).
INVALID = {
    "badaspec.dat", "baddate.dat", "baddn.dat", "badinv01.dat", "badvers.dat", "bigcode.dat",
    "clerr.dat", "escruri.dat", "insuf.dat", "ltgtruri.dat", "lwsruri.dat", "lwsstart.dat",
    "mcl01.dat", "mismatch01.dat", "mismatch02.dat", "multi01.dat", "ncl.dat", "quotbal.dat",
    "regbadct.dat", "scalar02.dat", "scalarlg.dat", "test.dat", "trws.dat", "ipv6-bad.dat",
}  # fmt: skip


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SIPLINE, "check", *args], check=False, input=stdin, capture_output=True, timeout=60
    )


def test_verdict_on_every_rfc4475_and_rfc5118_file() -> None:
    files = sorted((DATA / "rfc4475").glob("*.dat")) + sorted(
        (DATA / "rfc5118" / "wire").glob("*.dat")
    )
    assert len(files) == 62
    proc = run("--json", *map(str, files))
    assert proc.returncode == 1
    results = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(results) == 62
    for r in results:
        name = Path(r["file"]).name
        assert r["valid"] == (name not in INVALID), r
        if not r["valid"]:
            assert r["reason"]
            assert r["response"] == "dropped" if r["kind"] == "response" else r["status"] >= 400
    by_name = {Path(r["file"]).name: r for r in results}
    assert by_name["badvers.dat"]["status"] == 505
    assert by_name["unkscm.dat"]["status"] == 416
    assert by_name["zeromf.dat"]["status"] == 483 and by_name["zeromf.dat"]["role"] == "proxy"


def test_human_output_and_exit_status() -> None:
    good = DATA / "rfc4475" / "wsinv.dat"
    proc = run(str(good))
    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"{good}: valid"
    bad = DATA / "rfc4475" / "badvers.dat"
    proc = run(str(bad))
    assert proc.returncode == 1
    assert "invalid: Version Not Supported" in proc.stdout.decode()
    assert "SIP/2.0 505" in proc.stdout.decode()


def test_stdin_and_garbage_never_crash() -> None:
    proc = run("-", stdin=(DATA / "rfc4475" / "esc01.dat").read_bytes())
    assert proc.returncode == 0 and proc.stdout.decode().startswith("<stdin>: valid")
    for junk in (b"", b"\x00\xff" * 500, b"INVITE\r\n\r\n", b"SIP/2.0 999 X\r\n\r\n"):
        proc = run("-", stdin=junk)
        assert proc.returncode == 1
        assert b"Traceback" not in proc.stderr


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = run(str(tmp_path / "missing.sip"))
    assert proc.returncode != 0
    assert b"cannot read" in proc.stderr and b"Traceback" not in proc.stderr


def test_exit_status_is_zero_only_when_every_message_is_valid() -> None:
    valid = [DATA / "rfc4475" / n for n in ("wsinv.dat", "esc01.dat", "dblreq.dat")]
    valid.append(DATA / "rfc5118" / "wire" / "ipv6-good.dat")
    proc = run("--json", *map(str, valid))
    assert proc.returncode == 0
    assert [json.loads(line)["valid"] for line in proc.stdout.decode().splitlines()] == [True] * 4
    stdin = (DATA / "rfc4475" / "ncl.dat").read_bytes()
    proc = run(*map(str, valid), "-", stdin=stdin)
    assert proc.returncode == 1
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("<stdin>: invalid: ")
    assert all(line.endswith(": valid") for line in lines[:4])
