"""Deterministic stand-ins for time, randomness and the network, for sipline's tests
and users' own.

`FakeClock` moves only when told to and fires the `Timers` of every endpoint built on it
(`await advance(clock, s)` steps a whole server or user agent through its timers),
`SeededEntropy` makes reproducible identifiers, `LossyRelay` drops and delays datagrams
between two sockets. Imports nothing from sipline (the `Timers` it fires attach
themselves); nothing in sipline imports it.
"""

from sipline.testing.fakes import FakeClock, SeededEntropy, advance
from sipline.testing.relay import LossyRelay, relay_pair

__all__ = ["FakeClock", "LossyRelay", "SeededEntropy", "advance", "relay_pair"]
