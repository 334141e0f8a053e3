"""TimerConfig: the RFC 3261 Table 4 values and the RFC 6026 additions."""

from __future__ import annotations

import pytest

from sipline.core.timers import Timer, TimerConfig


def test_defaults_unreliable() -> None:
    c = TimerConfig()
    assert (c.t1, c.t2, c.t4) == (0.5, 4.0, 5.0)
    d = c.durations(False)
    assert {t.name: d[t] for t in Timer} == {
        "A": 0.5,
        "B": 32.0,
        "D": 32.0,
        "E": 0.5,
        "F": 32.0,
        "G": 0.5,
        "H": 32.0,
        "I": 5.0,
        "J": 32.0,
        "K": 5.0,
        "L": 32.0,
        "M": 32.0,
        "TRYING": 0.2,
    }


def test_defaults_reliable() -> None:
    d = TimerConfig().durations(True)
    assert [d[t] for t in (Timer.D, Timer.I, Timer.J, Timer.K)] == [0.0, 0.0, 0.0, 0.0]
    # B, F, H and RFC 6026's L and M do not depend on the transport.
    assert [d[t] for t in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M)] == [32.0] * 5


def test_derived_from_t1() -> None:
    c = TimerConfig(t1=1.0, t2=8.0, t4=10.0)
    assert (c.b, c.f, c.h, c.l, c.m) == (64.0, 64.0, 64.0, 64.0, 64.0)
    assert c.j(False) == 64.0
    assert (c.i(False), c.k(False)) == (10.0, 10.0)
    assert c.d(False) == 64.0  # never shorter than H: outlives every retransmitted final
    assert TimerConfig(t1=0.1).d(False) == 32.0  # §17.1.1.2: at least 32 s


@pytest.mark.parametrize(
    "kwargs", [{"t1": 0.0}, {"t1": 2.0, "t2": 1.0}, {"t4": -1.0}, {"trying": -0.1}]
)
def test_invalid_config(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="timer values"):
        TimerConfig(**kwargs)
