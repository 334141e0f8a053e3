"""Audio files as people have them: sox's default WAV (WAVE_FORMAT_EXTENSIBLE), float and
24-bit WAV, stereo at 44.1 kHz, FLAC and Ogg Vorbis all read as mono int16 at the codec
rate; what is not audio is refused with one line naming the file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sipline.media_io.audio_files import AudioFileError, check_audio_file, read_wav

SOX = shutil.which("sox")
pytestmark = pytest.mark.skipif(SOX is None, reason="needs sox")


def _sox(path: Path, *options: str) -> Path:
    assert SOX is not None
    subprocess.run(
        [SOX, "-n", *options, str(path), "synth", "1.0", "sine", "440", "vol", "0.5"],
        check=True,
        timeout=30,
    )
    return path


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("extensible.wav", ("-r", "8000", "-c", "1", "-b", "32")),  # sox's default: 65534
        ("float.wav", ("-r", "16000", "-c", "1", "-e", "floating-point", "-b", "32")),
        ("cd.wav", ("-r", "44100", "-c", "2", "-b", "24")),
        ("tone.flac", ("-r", "48000", "-c", "2")),
        ("tone.ogg", ("-r", "44100", "-c", "1")),
    ],
)
def test_common_formats_read_as_mono_at_the_codec_rate(
    tmp_path: Path, name: str, options: tuple[str, ...]
) -> None:
    path = _sox(tmp_path / name, *options)
    check_audio_file(path)
    samples = read_wav(path, target_rate=8000)
    assert samples.dtype == np.int16 and abs(len(samples) - 8000) < 400
    # A 440 Hz tone at half scale: its spectrum peaks at 440 Hz, its level is ~0.5.
    body = samples[1000:7000].astype(np.float64)
    peak_hz = np.argmax(np.abs(np.fft.rfft(body))) * 8000 / len(body)
    assert abs(peak_hz - 440) < 5
    assert 0.35 < np.max(np.abs(body)) / 32768 < 0.65


def test_what_is_not_audio_is_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    for path, why in (
        (text, "Invalid data"),
        (tmp_path, "is a directory"),
        (tmp_path / "missing.wav", "No such file"),
    ):
        with pytest.raises(AudioFileError) as info:
            check_audio_file(path)
        message = str(info.value)
        assert why in message and str(path) in message and "\n" not in message
