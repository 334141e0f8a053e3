"""Deterministic stand-ins for time, randomness and the network, for sipline's tests and users' own."""

from sipline.testing.fakes import FakeClock, SeededEntropy

__all__ = ["FakeClock", "SeededEntropy"]
