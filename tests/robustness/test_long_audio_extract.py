"""A one-hour file loads and extracts with bounded memory (peak RSS measured in a fresh process).

Documented limits (serkit.data.audio): loading needs memory for the result only (plus one
decoded block), whatever the channel count; whole files up to MAX_DURATION (1 h) are
accepted, and the built-in mfcc extractor's peak for one hour is about 1 GB with 13
coefficients and a 20 ms hop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

LONG_SR = 8000

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
Probe = Callable[..., list[tuple[Any, float]]]


def test_an_hour_loads_with_memory_for_the_result_only(hour_file: Path, peak_memory: Probe) -> None:
    ((shape, rise),) = peak_memory(
        "from serkit.data.audio import load_audio\nimport soxr",
        f"wav = load_audio({str(hour_file)!r}, 16000)\nresult = list(wav.shape)",
    )
    assert shape == [3600 * 16000]
    result_mib = 3600 * 16000 * 4 / MIB  # 219.7 MiB of float32
    assert rise < result_mib + 48, f"loading 1 h raised the peak RSS by {rise:.0f} MiB"


def test_six_channels_are_never_held_at_once(tmp_path: Path, peak_memory: Probe) -> None:
    """10 min of 6-channel 8 kHz audio: decoding it whole as float32 would take 110 MiB."""
    import soundfile as sf

    path = tmp_path / "six.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=LONG_SR, channels=6, subtype="PCM_16") as f:
        for _ in range(10):
            f.write((0.01 * rng.standard_normal((60 * LONG_SR, 6))).astype(np.float32))
    ((n, rise),) = peak_memory(
        "from serkit.data.audio import load_audio\nimport soxr",
        f"result = int(load_audio({str(path)!r}, 16000).shape[0])",
    )
    assert n == 600 * 16000
    assert rise < 600 * 16000 * 4 / MIB + 24, f"peak RSS rose by {rise:.0f} MiB"


def test_an_hour_extracts_through_the_driver_with_bounded_memory(
    hour_file: Path, tmp_path: Path, peak_memory: Probe
) -> None:
    setup = f"""
        from pathlib import Path
        import librosa, soxr
        from serkit.builtin.extractors.mfcc import Mfcc
        from serkit.data.utterance import Utterance
        from serkit.features.driver import extract_features
        from serkit.features.store import FeatureStore
        ext = Mfcc(n_mfcc=13, hop_ms=20)
        store = FeatureStore(Path({str(tmp_path / "store")!r}), ext)
        utt = Utterance(id="hour", path={str(hour_file)!r}, label="angry", speaker="s1")
    """
    step = """
        res = extract_features([utt], ext, store, progress=False, num_workers=1)
        feats = store.get(res.keys["hour"])
        result = [res.computed, res.audio_seconds, list(feats.shape), bool(feats.std(axis=0).min() > 0)]
    """
    (((computed, seconds, shape, varied), rise),) = peak_memory(setup, step)
    assert computed == 1 and seconds == pytest.approx(3600.0)
    assert shape == [1 + 3600 * 16000 // 320, 13]  # 50 frames per second, centred
    assert varied
    assert rise < 1280, f"extracting 1 h raised the peak RSS by {rise:.0f} MiB"
