"""The status line of one server process (SIGUSR1, `GET /api/status`): live
transactions, message counters, overload and flood figures, as `key=value` pairs that
the supervisor of `--workers N` sums over its workers."""

from __future__ import annotations

from sipline.runtime.endpoint import Endpoint
from sipline.storage.aio import AsyncStore

__all__ = ["status_line"]


def status_line(ep: Endpoint, store: AsyncStore | None) -> str:
    ts = ep.transports.stats
    guard = ep.overload
    lag_ms = round(guard.lag_s * 1000) if guard is not None else 0
    flood = ep.flood
    return (
        f"status: transactions={ep.live_transactions} requests_in={ep.stats.requests_in} "
        f"responses_in={ep.stats.responses_in} stateless_answers={ep.stats.stateless_answers} "
        f"malformed_requests={ep.stats.malformed_requests} "
        f"malformed_responses={ep.stats.malformed_responses} connections={ts.connections_open} "
        f"pending_transactions={ep.pending_transactions} "
        f"overload_rejections={ep.stats.overload_rejections} "
        f"overloaded={int(guard is not None and guard.overloaded)} "
        f"shed_pct={round(guard.shed_fraction * 100) if guard is not None else 0} "
        f"loop_lag_ms={lag_ms} "
        f"response_wait_ms={round(guard.wait_s * 1000) if guard is not None else 0} "
        f"udp_queue_pct={round(guard.udp_fill * 100) if guard is not None else 0} "
        f"store_backlog={store.backlog if store is not None else 0} "
        f"flood_bans={flood.stats.bans if flood is not None else 0} "
        f"flood_banned={flood.banned_count if flood is not None else 0} "
        f"flood_dropped={flood.stats.dropped if flood is not None else 0} "
        f"message_timeouts={ts.message_timeouts} connections_evicted={ts.connections_evicted} "
        f"to_siblings={ts.to_siblings}"
    )
