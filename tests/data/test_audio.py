from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.data.audio import audio_info, load_audio
from serkit.errors import AudioError

SR = 16000


def sine(seconds: float, sr: int = SR, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype("float32")


def test_loads_mono_float32(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    sf.write(p, sine(1.0), SR, subtype="PCM_16")
    wav = load_audio(p)
    assert wav.dtype == np.float32 and wav.shape == (SR,)
    assert abs(float(np.abs(wav).max()) - 0.5) < 1e-3


def test_downmixes_and_resamples(tmp_path: Path) -> None:
    p = tmp_path / "st.wav"
    left, right = sine(1.0, 48000, 300), sine(1.0, 48000, 300) * 0.0
    sf.write(p, np.stack([left, right], axis=1), 48000, subtype="PCM_24")
    wav = load_audio(p, 16000)
    assert wav.shape == (16000,)
    # mean of the channels: amplitude halves
    assert abs(float(np.abs(wav[100:-100]).max()) - 0.25) < 0.01
    info = audio_info(p)
    assert (info.sample_rate, info.channels, info.frames) == (48000, 2, 48000)


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        (lambda p: p.write_text("this is not audio"), "not a readable audio file"),
        (
            lambda p: sf.write(p, np.zeros(SR, dtype="float32"), SR),
            "audio is all zeros (digital silence)",
        ),
        (
            lambda p: sf.write(p, np.full(SR, np.nan, dtype="float32"), SR, subtype="FLOAT"),
            "audio contains NaN or infinite samples",
        ),
        (lambda p: sf.write(p, sine(0.05), SR), "audio is 0.050 s long; the minimum is 0.1 s"),
        (lambda p: sf.write(p, np.zeros(0, dtype="float32"), SR), "audio has zero samples"),
    ],
)
def test_bad_audio_gives_audio_error_naming_the_file(tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(AudioError) as info:
        load_audio(p)
    assert str(info.value).startswith(f"{p}: ")
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio(tmp_path / "nope.wav")
