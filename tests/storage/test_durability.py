"""An acknowledged binding survives `kill -9` of the process that wrote it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sipline.storage import SqliteStore

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from sipline.storage import AsyncStore, Binding

    async def main(path):
        store = await AsyncStore.open(path)
        i = 0
        while True:
            batch = [
                store.update_bindings(
                    f"user{i + k}@example.com",
                    upsert=[Binding(f"user{i + k}@example.com", f"sip:u@10.0.0.1:{i + k}",
                                    1e12, "call", i + k)],
                )
                for k in range(5)
            ]
            await asyncio.gather(*batch)
            for k in range(5):
                print(i + k, flush=True)  # acknowledged: committed
            i += 5

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_bindings_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged: list[int] = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) >= 200:
            break
    proc.send_signal(signal.SIGKILL)  # mid-stream: the writer is still writing
    rest, _ = proc.communicate(timeout=30)
    acknowledged += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL

    store = SqliteStore(path)
    stored = {b.cseq for b in store.all_bindings()}
    store.close()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged bindings lost"
    assert len(acknowledged) >= 200
