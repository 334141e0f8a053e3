"""Telephony features in the proxy's routing: call forwarding, find-me/follow-me,
time-of-day and location-based routing, emergency calls, do-not-disturb and
blocklists.

The rule evaluation is pure (`rules`, `schedule`, `location`, `router`,
`emergency`, `history`, `explain`): it takes the instant, the caller and the callee's
rules and devices as arguments. `planner` connects it to the server's store and the
proxy's `RoutePlanner` hook (`plan`).
"""
