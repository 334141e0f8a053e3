"""Shared pieces of the fuzz harnesses: the seed corpus, a mutator and a plain driver.

The seed corpus is read at run time from the conformance data under `tests/data`
(RFC 4475 and RFC 5118 torture messages); nothing is copied into `fuzz/`.

When atheris is installed the harnesses hand their target to libFuzzer (coverage
guided). Otherwise, or when `--iterations`/`--seconds` is given, `run` drives the
target with random mutations of the seeds: slower to find deep bugs, but it needs
nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "FALLBACK_FLAGS",
    "Target",
    "atheris_corpus_dir",
    "load_seeds",
    "mutate",
    "run",
    "wants_fallback",
]

Target = Callable[[bytes], None]

ROOT = Path(__file__).resolve().parent.parent
SEED_GLOBS = ("tests/data/rfc4475/*.dat", "tests/data/rfc5118/wire/*.dat")

# Flags that select the plain driver even when atheris is importable.
FALLBACK_FLAGS = ("--iterations", "--seconds", "--fallback", "--seed", "--help", "-h")

# Octet strings that tend to sit on a parser's decision points.
_TOKENS: tuple[bytes, ...] = (
    b":",
    b";",
    b",",
    b"<",
    b">",
    b'"',
    b"\\",
    b"=",
    b"@",
    b"?",
    b"&",
    b"%",
    b"%2",
    b"%00",
    b"[",
    b"]",
    b"/",
    b" ",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n ",
    b"\r\n\t",
    b"\r\n\r\n",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"0",
    b"-1",
    b"255",
    b"256",
    b"65535",
    b"65536",
    b"4294967295",
    b"4294967296",
    b"99999999999999999999",
    b"sip:",
    b"sips:",
    b"tel:",
    b"mailto:",
    b"<sip:a@b>",
    b"[::1]",
    b"[2001:db8:::192.0.2.1]",
    b"1.2.3.999",
    b";tag=",
    b";branch=z9hG4bK",
    b";received=",
    b";rport",
    b";lr",
    b";ttl=",
    b";maddr=",
    b";expires=",
    b";q=",
    b"SIP/2.0",
    b"SIP/2.0/UDP ",
    b"SIP/3.0",
    b"Via: ",
    b"v: ",
    b"Content-Length: ",
    b"l: ",
    b"Contact: *",
    b"Route: ",
    b"CSeq: 1 INVITE",
    b"Max-Forwards: ",
    b"Call-ID: ",
    b"To: ",
    b"From: ",
    b"Date: ",
    b"Require: ",
)

_MAX_INPUT = 70_000  # a little past the parser's 65,535-octet message limit


def load_seeds(root: Path = ROOT) -> list[bytes]:
    """Every seed message, as bytes, read now from the conformance data."""
    seeds = [p.read_bytes() for pattern in SEED_GLOBS for p in sorted(root.glob(pattern))]
    if not seeds:
        raise SystemExit(f"no seed messages found under {root} ({', '.join(SEED_GLOBS)})")
    return seeds


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def mutate(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    """Apply one to eight random edits to `data`."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
        op = rng.randrange(11)
        n = len(buf)
        pos = rng.randrange(n + 1)
        if op == 0 and n:  # flip one bit
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # overwrite an octet
            buf[rng.randrange(n)] = rng.choice(b':;,<>"\\ \t\r\n\x00\xff@=%[]0')
        elif op == 2:  # insert a token
            buf[pos:pos] = rng.choice(_TOKENS)
        elif op == 3 and n:  # delete a range
            buf[pos : pos + rng.randint(1, 16)] = b""
        elif op == 4 and n:  # duplicate a range
            start = rng.randrange(n)
            chunk = buf[start : start + rng.randint(1, 64)]
            buf[pos:pos] = chunk * rng.choice((1, 1, 2, 8))
        elif op == 5:  # splice in a header line of another message
            other = _lines(rng.choice(corpus))
            lines = _lines(bytes(buf))
            at = rng.randrange(len(lines) + 1)
            lines.insert(at, rng.choice(other))
            buf = bytearray(b"\r\n".join(lines))
        elif op == 6 and n:  # truncate
            del buf[rng.randrange(n) :]
        elif op == 7:  # swap or drop header lines
            lines = _lines(bytes(buf))
            if len(lines) > 2:
                i, j = rng.randrange(1, len(lines)), rng.randrange(1, len(lines))
                if rng.random() < 0.5:
                    lines[i], lines[j] = lines[j], lines[i]
                else:
                    del lines[i]
                buf = bytearray(b"\r\n".join(lines))
        elif op == 8:  # a long run of one octet (length limits)
            buf[pos:pos] = bytes([rng.choice(b"a ;,<\r\n0")]) * rng.choice((64, 300, 9000, 66000))
        elif op == 9:  # change a number
            digits = [i for i in range(n) if 0x30 <= buf[i] <= 0x39]
            if digits:
                i = rng.choice(digits)
                j = i
                while j < n and 0x30 <= buf[j] <= 0x39:
                    j += 1
                buf[i:j] = rng.choice(_TOKENS[30:39])
        elif op == 10:  # splice with another message
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + other[cut:] if rng.random() < 0.5 else bytearray(other[:cut]) + buf
    return bytes(buf[:_MAX_INPUT])


def wants_fallback(argv: Sequence[str]) -> bool:
    return any(a.split("=", 1)[0] in FALLBACK_FLAGS for a in argv)


def atheris_corpus_dir(name: str, seeds: Sequence[bytes]) -> str:
    """A scratch corpus directory (outside the repository) holding the seeds.

    libFuzzer writes the inputs it finds interesting into its first corpus
    directory, so the seeds are written to a temporary one rather than pointing
    libFuzzer at `tests/data`.
    """
    path = Path(tempfile.gettempdir()) / f"sipline-{name}-corpus"
    path.mkdir(exist_ok=True)
    for seed in seeds:
        (path / hashlib.sha256(seed).hexdigest()).write_bytes(seed)
    return str(path)


def _crash_key(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    if isinstance(exc, AssertionError):
        # A harness rule: its message says which rule and how, so keep it in the key.
        return f"{type(exc).__name__} at {where}: {str(exc)[:160]}"
    return f"{type(exc).__name__} at {where}"


def run(
    name: str,
    target: Target,
    generate: Callable[[random.Random, Sequence[bytes]], bytes],
    argv: Sequence[str],
) -> int:
    """The plain driver: `--iterations N` and/or `--seconds S`, `--seed`, `--artifact-dir`."""
    parser = argparse.ArgumentParser(
        prog=f"python fuzz/{name}.py",
        description="Random-mutation driver (used when atheris is absent or these flags are given).",
    )
    parser.add_argument("--iterations", type=int, default=None, help="inputs to try")
    parser.add_argument("--seconds", type=float, default=None, help="time budget")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--fallback", action="store_true", help="use this driver even with atheris")
    parser.add_argument(
        "--artifact-dir", type=Path, default=None, help="write crashing inputs here"
    )
    args = parser.parse_args(argv)
    if args.iterations is None and args.seconds is None:
        args.iterations = 100_000
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    corpus = load_seeds()
    print(f"{name}: {len(corpus)} seeds, seed={seed}", flush=True)

    crashes: dict[str, bytes] = {}
    start = time.monotonic()
    deadline = start + args.seconds if args.seconds is not None else None
    done = 0

    def attempt(data: bytes) -> None:
        try:
            target(data)
        except Exception as exc:
            key = _crash_key(exc)
            if key in crashes:
                return
            crashes[key] = data
            print(f"\n=== CRASH {key}\ninput ({len(data)} bytes): {data[:2000]!r}", flush=True)
            traceback.print_exception(exc, file=sys.stdout)
            if args.artifact_dir is not None:
                args.artifact_dir.mkdir(parents=True, exist_ok=True)
                out = args.artifact_dir / f"crash-{hashlib.sha256(data).hexdigest()}"
                out.write_bytes(data)
                print(f"written to {out}", flush=True)

    for data in corpus:
        attempt(data)
    report_every = 10_000
    while True:
        if args.iterations is not None and done >= args.iterations:
            break
        if deadline is not None and done % 64 == 0 and time.monotonic() >= deadline:
            break
        attempt(generate(rng, corpus))
        done += 1
        if done % report_every == 0:
            rate = done / (time.monotonic() - start)
            print(f"#{done} {rate:,.0f} exec/s, {len(crashes)} distinct crashes", flush=True)
    elapsed = time.monotonic() - start
    print(
        f"{name}: {done} inputs in {elapsed:.1f} s, {len(crashes)} distinct crashes (seed={seed})",
        flush=True,
    )
    return 1 if crashes else 0
