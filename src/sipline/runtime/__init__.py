"""The runtime: one SIP element on asyncio, above the transports and the sans-I/O core.

`endpoint.Endpoint` owns the core's transaction layer, the transports and the timers,
and turns core events into callbacks and futures. Its parts, one job each:
`ingress` (Via fix-up, where responses go), `flood` and `admission` with `overload`
(what is let in), `handles` (ServerTransaction, ClientTransaction), `handlers`
(running the application's handlers), `addresses` (which address to name, Via
building), `timers` (every timer above the core, on the injected clock), `system`
(the real clock and entropy), `stats`, `siblings` (a worker process among the others
of its node: its branch mark, and responses handed to the worker that asked).

Imported by `sipline.server`, `sipline.phone` and `sipline.cli`; it imports
`sipline.transport` and the layers below it (the core).
"""
