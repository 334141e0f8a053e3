"""The channel between workers keeps a burst: Linux queues only a few datagrams at a
socket (`net.unix.max_dgram_qlen`, 10 by default), so what a busy sibling cannot take
yet waits in the sender's queue, in order, and reaches it once it reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sipline.transport import Source, TransportLayer
from sipline.transport.channel import WorkerChannel, channel_socket

BURST = 300


async def test_a_burst_larger_than_the_kernels_queue_arrives_whole_and_in_order(
    tmp_path: Path,
) -> None:
    got: list[bytes] = []
    layer = TransportLayer(lambda data, source: None)
    sender = WorkerChannel(0, channel_socket(str(tmp_path), 0), str(tmp_path), layer, got.append)
    receiver = WorkerChannel(
        1,
        channel_socket(str(tmp_path), 1),
        str(tmp_path),
        layer,
        lambda data, source: got.append(data),
    )
    sender.open()
    source = Source("UDP", ("127.0.0.9", 5060), ("127.0.0.1", 5060))
    try:
        # The receiver is not reading yet: far more than the kernel queues.
        for i in range(BURST):
            sender.hand_over(1, f"message {i}".encode(), source)
        assert layer.stats.to_siblings == BURST
        receiver.open()
        for _ in range(500):
            if len(got) == BURST:
                break
            await asyncio.sleep(0.01)
        assert got == [f"message {i}".encode() for i in range(BURST)]
    finally:
        sender.close()
        receiver.close()
