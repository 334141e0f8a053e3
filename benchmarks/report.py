"""What `python -m benchmarks` prints and writes: the table of figures (text and the
README's markdown), the ratios of sipline to its peer and, for the workloads run with
several process counts (a, f), to sipline's one-worker row, and the targets those
ratios are held to: the (a)-(f) rows against Kamailio, (b) at 0.5 of its
calls/s and (c) at 0.8 of its OPTIONS/s, and (p), the parser's proxy path, at 150,000
INVITEs/s with the C accelerator and 60,000 in pure Python.

A sipline row is compared with the peer's row of as many processes: sipline x2 and two
nodes of one process with Kamailio's 2 UDP children, sipline x1 with 1 child.
"""

from __future__ import annotations

from typing import Any

from benchmarks.workloads import WORKLOADS, Options, Result

__all__ = [
    "HEADER",
    "PEER",
    "SCALING",
    "UNITS",
    "label",
    "markdown",
    "ratio",
    "rows",
    "scaling",
    "targets",
    "text_table",
    "unmet",
]

# The peer each sipline figure is compared with.
PEER = {"a": "kamailio", "b": "kamailio", "c": "kamailio", "d": "sippy", "f": "kamailio"}
UNITS = {"a": "reg/s", "b": "calls/s", "c": "OPTIONS/s", "d": "calls/s", "e": "", "f": "calls/s",
         "p": "INVITE/s"}  # fmt: skip
PER = {"a": "registration", "f": "call"}
# Run with each worker count, and as nodes: their rows are compared with the 1-worker row.
SCALING = ("a", "f")
# The floors: sipline's rate over Kamailio's for (b) and (c); INVITEs/s through
# the parser's proxy path for (p), per row ("sipline pure": SIPLINE_PURE=1).
OVER_PEER = {"b": 0.5, "c": 0.8}
PARSER = {"sipline": 150_000, "sipline pure": 60_000}


def processes(r: Result) -> int:
    return (r.workers or 1) * r.nodes


def label(r: Result) -> str:
    """sipline x2 (two workers), sipline 2 nodes, kamailio x2 (two UDP children)."""
    if r.nodes > 1:
        return f"{r.server} {r.nodes} nodes"
    if r.workers is None or (r.workers == 1 and r.workload not in SCALING):
        return r.server
    return f"{r.server} x{r.workers}"


def _peer_of(results: list[Result], r: Result) -> Result | None:
    """The peer's row for sipline's row `r`: the one with as many processes, else the
    first."""
    w = "b" if r.workload == "d" else r.workload
    peers = [p for p in results if p.workload == w and p.server == PEER.get(r.workload)]
    same = [p for p in peers if processes(p) == processes(r)]
    return same[0] if same else peers[0] if peers else None


def _one_worker(results: list[Result], r: Result) -> Result | None:
    for x in results:
        if (x.workload, x.server, x.workers, x.nodes) == (r.workload, r.server, 1, 1):
            return x
    return None


def compared(results: list[Result], w: str) -> tuple[Result, Result, float] | None:
    """The rows `ratio` divides, sipline's (its (b) for (d)) with the most processes on
    one node and its peer's, and sipline's rate over the peer's; None unless both ran
    and passed some rate."""
    ours = [r for r in results if r.workload == ("b" if w == "d" else w)]
    ours = [r for r in ours if r.server == "sipline" and r.nodes == 1]
    theirs = [r for r in results if r.workload == w and r.server == PEER.get(w)]
    if not ours or not theirs:
        return None
    mine = max(ours, key=processes)
    peer = theirs[0] if w == "d" else _peer_of(results, mine)
    if peer is None or not mine.rate or not peer.rate:
        return None
    return mine, peer, mine.rate / peer.rate


def ratio(results: list[Result], w: str) -> float | None:
    """sipline's rate over the peer's: for (d), sipline's (b) over the B2BUA's; with
    several sipline rows, the one with the most processes on one node."""
    found = compared(results, w)
    return None if found is None else found[2]


def _pair(ours: Result, theirs: Result | None) -> str:
    """Rate ratio and CPU-per-call ratio, ours over theirs."""
    if theirs is None or theirs is ours or not ours.rate or not theirs.rate:
        return "-"
    cpu = (
        f", CPU {ours.cpu_s_per_1000 / theirs.cpu_s_per_1000:.2f}x"
        if ours.cpu_s_per_1000 and theirs.cpu_s_per_1000
        else ""
    )
    return f"{ours.rate / theirs.rate:.2f}x{cpu}"


def _over(ours: Result, other: Result | None, attr: str) -> float | None:
    mine, theirs = getattr(ours, attr), getattr(other, attr) if other else None
    return mine / theirs if mine and theirs else None


def scaling(results: list[Result]) -> dict[str, list[dict[str, Any]]]:
    """For --json: each sipline row of (a) and (f) with its ratios to the peer of as
    many processes and to the 1-worker row."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r.workload not in SCALING or r.server != "sipline":
            continue
        peer, one = _peer_of(results, r), _one_worker(results, r)
        out.setdefault(r.workload, []).append(
            {
                "row": label(r),
                "workers": r.workers,
                "nodes": r.nodes,
                "rate": r.rate,
                "cpu_s_per_1000": r.cpu_s_per_1000,
                "peer": label(peer) if peer else None,
                "rate_over_peer": _over(r, peer, "rate"),
                "cpu_over_peer": _over(r, peer, "cpu_s_per_1000"),
                "rate_over_one_worker": _over(r, one, "rate"),
                "cpu_over_one_worker": _over(r, one, "cpu_s_per_1000"),
            }
        )
    return out


def _verdicts(results: list[Result]) -> list[tuple[str, str, bool]]:
    """Each target measured in this run: (its key for `unmet`, what, met)."""
    out: list[tuple[str, str, bool]] = []
    for w in SCALING:
        for row in scaling(results).get(w, []):
            q = row["rate_over_peer"]
            if q is not None:
                out.append(
                    (
                        w,
                        f"({w}) {row['row']}: {q:.2f}x {row['peer']}'s rate (target >= 0.5",
                        q >= 0.5,
                    )
                )
            cpu = row["cpu_over_one_worker"]
            if row["row"] != "sipline x1" and cpu is not None:
                out.append((w, f"({w}) {row['row']}: CPU per {PER[w]} {cpu:.2f}x the 1-worker"
                               " row's (target: no growth, <= 1.1 allowing for noise", cpu <= 1.1))  # fmt: skip
            up = row["rate_over_one_worker"]
            if w == "a" and row["workers"] == 2 and row["nodes"] == 1 and up is not None:
                out.append(
                    (
                        w,
                        f"(a) {row['row']}: {up:.2f}x the 1-worker row's rate (target >= 1.7",
                        up >= 1.7,
                    )
                )
    for w, floor in OVER_PEER.items():
        found = compared(results, w)
        if found is not None:
            mine, peer, q = found
            # A rate that reached --max-rate is a floor: the ratio says little then.
            capped = any("a floor, not the maximum" in n for r in (mine, peer) for n in r.notes)
            out.append((w, f"({w}) {label(mine)}: {q:.2f}x {label(peer)}'s {UNITS[w]}"
                           f"{', a rate at the --max-rate ceiling' if capped else ''}"
                           f" (target >= {floor:g}", q >= floor))  # fmt: skip
    for r in results:
        if r.workload == "p" and r.server in PARSER and r.rate:
            floor = PARSER[r.server]
            how = "in pure Python" if r.server != "sipline" else "with the C accelerator"
            out.append((r.server.replace("sipline", "p"), f"(p) parser proxy path {how}:"
                        f" {r.rate:,.0f} INVITE/s (target >= {floor:,}", r.rate >= floor))  # fmt: skip
    return out


def targets(results: list[Result]) -> list[str]:
    """The targets, each met or not; one not measured in this run is left out."""
    return [f"{what}: {'met' if met else 'NOT met'})" for _, what, met in _verdicts(results)]


def unmet(results: list[Result]) -> list[str]:
    """The targets not met, by key: a workload ("a", "b", "c", "f", "p"), or "p pure"
    for the parser in pure Python; each once, in the order of `targets`."""
    keys = [key for key, _, met in _verdicts(results) if not met]
    return list(dict.fromkeys(keys))


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


HEADER = ["workload", "server", "max rate, 0 failed", "CPU s / 1,000", "peak memory (PSS)",
          "SIPp processes", "over peer: rate, CPU per call", "over x1: rate, CPU per call"]  # fmt: skip


def rows(results: list[Result]) -> list[list[str]]:
    table = []
    for r in results:
        if r.workload == "e":
            extra = r.extra
            each = ", ".join(
                f"{p['role']} {p['peak_rss_mb']:.0f}" for p in extra.get("processes", [])
            )
            table.append([
                f"(e) {WORKLOADS['e']}", label(r), "-", "-",
                f"{_num(r.peak_vmhwm_mb, '.1f')} MB peak RSS (VmHWM summed{': ' + each if each else ''})"
                f" (target < {extra.get('target_mb')} MB: {'met' if extra.get('target_met') else 'NOT met'});"
                f" {_num(r.peak_pss_mb, '.1f')} MB peak PSS",
                "1", "-", "-",
            ])  # fmt: skip
            continue
        if r.workload == "p":  # in one process: no memory, SIPp or peer to speak of
            how = "C accelerator" if r.extra.get("accelerated") else "pure Python"
            table.append([
                f"(p) {WORKLOADS['p']}", f"{label(r)} ({how})" if r.rate else label(r),
                f"{_num(r.rate)} {UNITS['p']}" if r.rate else "ERROR",
                _num(r.cpu_s_per_1000, ".3f"), "-", "-", "-", "-",
            ])  # fmt: skip
            continue
        if r.workload == "d":  # the B2BUA's row: sipline's proxy calls of (b) over it
            q = ratio(results, "d")
            vs_peer = "-" if q is None else f"{q:.2f}"
        elif r.server == "sipline":
            vs_peer = _pair(r, _peer_of(results, r))
        else:
            vs_peer = "-"
        one = _one_worker(results, r) if r.workload in SCALING and r.server == "sipline" else None
        sipp = str(r.sipp_processes) + (
            " (SIPp was the bottleneck)" if r.notes and any("SIPp" in n for n in r.notes) else ""
        )
        table.append([
            f"({r.workload}) {WORKLOADS[r.workload]}",
            label(r),
            f"{_num(r.rate)} {UNITS[r.workload]}" if r.rate else ("ERROR" if any(n.startswith("error") for n in r.notes) else "none passed"),
            _num(r.cpu_s_per_1000, ".3f"),
            f"{_num(r.peak_pss_mb, '.1f')} MB",
            sipp,
            vs_peer,
            _pair(r, one),
        ])  # fmt: skip
    return table


def text_table(results: list[Result]) -> str:
    table = [HEADER, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table
    )


def markdown(
    results: list[Result],
    info: dict[str, Any],
    opts: Options,
    quick: bool,
    more: tuple[str, ...] = (),
) -> str:
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, {info['python']};"
        f" sipline {info['sipline']}, Kamailio {info['kamailio'] or '-'}, SIPp {info['sipp'] or '-'},"
        f" sippy {info['sippy'] or '-'}.",
        f"Steps of {opts.duration:g} s{' (--quick: short steps, one refinement; noisy)' if quick else ''};"
        " \"over peer\" is sipline's rate over the peer's and its CPU per call over the peer's,"
        " against the peer row with as many processes (Kamailio's UDP children); for (d),"
        " sipline's proxy calls of (b) over the sippy B2BUA's. \"over x1\": the same against"
        " sipline's 1-worker row. `x2`: workers of one `sipline serve` (SO_REUSEPORT);"
        " `2 nodes`: two `sipline serve` of one process each on 127.0.0.1 and 127.0.0.2 sharing"
        " one database, SIPp's load split between them.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    notes = [f"({r.workload}) {label(r)}: {n}" for r in results for n in r.notes]
    goals = [*targets(results), *more]
    if notes or goals:
        lines += ["", *[f"- {n}" for n in [*goals, *notes]]]
    return "\n".join(lines) + "\n"
