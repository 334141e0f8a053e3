"""Deterministic stand-ins for time, randomness and the network, for sipline's tests and users' own."""

from sipline.testing.fakes import FakeClock, SeededEntropy, advance
from sipline.testing.relay import LossyRelay, relay_pair

__all__ = ["FakeClock", "LossyRelay", "SeededEntropy", "advance", "relay_pair"]
