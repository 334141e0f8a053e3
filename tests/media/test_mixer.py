"""The conference mixer without sockets: golden frames in, each listener's frame out."""

from __future__ import annotations

import numpy as np

from sipline.media.mixer import Mixer, gain_for_step


def const(value: int, n: int = 160) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def test_each_talker_hears_the_others_and_not_itself() -> None:
    mixer: Mixer[str] = Mixer()
    for name in "abcd":
        mixer.add(name)
    result = mixer.mix({"a": const(1000), "b": const(2000), "c": const(-500), "d": None})
    assert set(result.talkers) == {"a", "b", "c"}
    assert (result.for_("a") == 1500).all()  # b + c
    assert (result.for_("b") == 500).all()  # a + c
    assert (result.for_("c") == 3000).all()  # a + b
    assert (result.for_("d") == 2500).all()  # a listener hears everyone
    assert result.is_full(result.for_("d"))


def test_the_sum_saturates_instead_of_wrapping() -> None:
    mixer: Mixer[int] = Mixer()
    for i in range(4):
        mixer.add(i)
    result = mixer.mix({0: const(30000), 1: const(30000), 2: const(-30000), 3: None})
    assert (result.for_(3) == 30000).all()  # 30000 + 30000 - 30000 in 32 bits
    assert (result.for_(2) == 32767).all()  # 60000 clipped
    assert (result.for_(0) == 0).all()
    high = mixer.mix({0: const(30000), 1: const(30000), 2: const(30000)})
    assert (high.full == 32767).all()
    low = mixer.mix({0: const(-30000), 1: const(-30000), 2: const(-30000)})
    assert (low.full == -32768).all()


def test_every_listener_shares_one_full_mix_object() -> None:
    mixer: Mixer[int] = Mixer()
    for i in range(10):
        mixer.add(i)
    result = mixer.mix({0: const(1000), 1: None, 2: const(0)})
    outs = [result.for_(i) for i in range(1, 10)]
    assert all(o is result.full for o in outs)  # one array: one encode per codec
    assert result.for_(0) is not result.full


def test_silent_participants_are_skipped() -> None:
    mixer: Mixer[str] = Mixer(hangover_frames=0)
    for name in "abc":
        mixer.add(name)
    noise = (np.random.default_rng(1).standard_normal(160) * 3).astype(np.int16)  # ~ -80 dBFS
    for _ in range(50):
        result = mixer.mix({"a": const(1000), "b": noise, "c": const(0)})
        assert result.talkers == ["a"]
        assert (result.full == 1000).all()  # b's noise is not in the mix
    assert mixer.participants["b"].frames_in == 50
    assert mixer.participants["b"].frames_mixed == 0
    assert mixer.participants["a"].frames_mixed == 50


def test_hangover_keeps_a_talker_through_a_short_pause() -> None:
    mixer: Mixer[str] = Mixer(hangover_frames=2)
    mixer.add("a")
    mixer.add("b")
    assert mixer.mix({"a": const(1000)}).talkers == ["a"]
    assert mixer.mix({"a": const(0)}).talkers == ["a"]
    assert mixer.mix({"a": const(0)}).talkers == ["a"]
    assert mixer.mix({"a": const(0)}).talkers == []


def test_muted_participants_are_not_heard() -> None:
    mixer: Mixer[str] = Mixer()
    for name in "abc":
        mixer.add(name)
    mixer.participants["a"].muted = True
    result = mixer.mix({"a": const(1000), "b": const(2000), "c": None})
    assert (result.for_("c") == 2000).all()
    assert (result.for_("a") == 2000).all()  # a muted participant still listens
    assert (result.for_("b") == 0).all()


def test_volume_steps() -> None:
    mixer: Mixer[str] = Mixer()
    for name in "ab":
        mixer.add(name)
    mixer.participants["b"].listen_step = 2  # +6 dB
    mixer.participants["a"].talk_step = -2
    result = mixer.mix({"a": const(2000)})
    assert abs(int(result.full[0]) - round(2000 * gain_for_step(-2))) <= 1
    assert abs(int(result.for_("b")[0]) - round(int(result.full[0]) * gain_for_step(2))) <= 1
    assert result.for_("b") is not result.full
