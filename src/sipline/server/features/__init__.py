"""Telephony features in the proxy's routing: call forwarding, find-me/follow-me,
time-of-day and location-based routing, emergency calls, do-not-disturb and
blocklists.

The rule evaluation is pure (`rules`, `schedule`, `location`, `forwarding`,
`emergency`, `history`, `explain`): it takes the instant, the caller and the callee's
rules and devices as arguments, and builds a call's routing steps. `decisions` is
the vocabulary between it and the proxy, which carries the steps out
(`sipline.server.proxy`): the `RoutePlanner` hook, a `RouteSession` per call, its
decisions (`RingStep`, `Reject`, `Exhausted`) and the outcome of each step.
`routing_service` connects the rules to the server's store and opens each call's
session.

Imported by the proxy (`sipline.server.proxy`), the server's wiring and configuration,
and `sipline route` in the CLI.
"""
