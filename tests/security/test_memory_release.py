"""Memory a burst of transactions took is given back once they are gone
(runtime/system.py `MemoryRelease`), once per burst."""

from __future__ import annotations

import re
from pathlib import Path

from sipline.runtime.system import MemoryRelease, release_memory


def rss_kib() -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


def test_released_once_the_table_drained_from_a_burst() -> None:
    release = MemoryRelease(min_peak=1000)
    assert not release.observe(500)
    assert not release.observe(0)  # no burst yet
    assert not release.observe(40_000)
    assert not release.observe(10_000)  # still draining
    assert release.observe(4_000)  # an eighth of the peak
    assert release.releases == 1
    assert not release.observe(3_000)  # once per burst
    assert not release.observe(0)
    assert release.observe(0) is False and release.releases == 1


def test_release_gives_freed_heap_back() -> None:
    before = rss_kib()
    blocks = [bytes(2000) + str(i).encode() for i in range(40_000)]  # about 80 MB of C heap
    grown = rss_kib()
    keep = blocks[::1000]  # a few survivors scattered over the heap
    del blocks
    release_memory()
    after = rss_kib()
    assert grown - before > 50_000
    assert after - before < (grown - before) / 4, (before, grown, after)
    assert len(keep) == 40
