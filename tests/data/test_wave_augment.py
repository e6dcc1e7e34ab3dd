"""Waveform augmentation: exact lengths and SNRs, determinism, cached copies in their own store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from serkit.data.wave_augment import NoiseSpec, SpeedSpec, WaveAugmentSpec, apply_augment, augment_tag
from serkit.features.augmented import AugmentedExtractor
from serkit.testing.cli import run_recipe_isolated

SR = 16000


def _tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_and_pitch_by_the_factor(factor: float) -> None:
    out = apply_augment(_tone(), SR, SpeedSpec(factor=factor))
    assert out.dtype == np.float32
    assert abs(len(out) - SR / factor) <= 1
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * SR / len(out)
    assert peak_hz == pytest.approx(220 * factor, rel=0.01)


@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_is_added_at_the_requested_snr_and_is_deterministic(color: str) -> None:
    wav = _tone(2.0)
    spec = NoiseSpec(snr_db=10, color=color)
    out = apply_augment(wav, SR, spec)
    noise = out.astype(np.float64) - wav
    snr = 10 * np.log10(np.mean(wav.astype(np.float64) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.3)
    np.testing.assert_array_equal(out, apply_augment(wav, SR, spec))  # the same file, the same copy
    assert not np.array_equal(out, apply_augment(wav, SR, NoiseSpec(snr_db=10, color=color, seed=1)))


def test_pink_noise_has_more_low_than_high_frequency_power() -> None:
    silence_free = _tone(2.0) * 0 + 0.1
    noise = apply_augment(silence_free, SR, NoiseSpec(snr_db=0, color="pink")) - silence_free
    power = np.abs(np.fft.rfft(noise)) ** 2
    low, high = power[10:1000].mean(), power[-10000:].mean()
    assert low > 20 * high


def test_specs_validate_and_name_themselves() -> None:
    adapter = TypeAdapter(WaveAugmentSpec)
    assert augment_tag(adapter.validate_python({"type": "speed", "factor": 0.9})) == "speed0.9"
    assert augment_tag(adapter.validate_python({"type": "noise", "snr_db": 20, "color": "pink"})) == "noise20dB-pink"
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "speed", "factor": 3.0})
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "reverb"})


def test_augmented_extractor_has_its_own_key_and_computes_on_the_copy() -> None:
    from serkit.builtin.extractors.mfcc import Mfcc

    base = Mfcc(n_mfcc=13)
    slow, fast = AugmentedExtractor(base, SpeedSpec(factor=0.9)), AugmentedExtractor(base, SpeedSpec(factor=1.1))
    assert len({base.fingerprint(), slow.fingerprint(), fast.fingerprint()}) == 3
    assert slow.name == "mfcc+speed0.9" and slow.dim == base.dim and slow.output == "sequence"
    wav = _tone()
    np.testing.assert_array_equal(slow.extract(wav), base.extract(apply_augment(wav, SR, SpeedSpec(factor=0.9))))
    assert slow.extract(wav).shape[0] > base.extract(wav).shape[0]  # slower: more frames


RECIPE = """\
name: augment
seed: 0
protocol: {type: speaker, k: 2, folds: [0]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 4, per_class: 3, emotions: [angry, neutral, sad]}}
features:
  mfcc:
    extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}
    encoder: {type: stats_pool}
heads:
  default: {type: mlp, hidden: [8]}
data: {augment: [{type: speed, factor: 1.1}, {type: noise, snr_db: 20}]}
train: {epochs: 1, batch_size: 4}
logging: {tensorboard: false, mlflow: false}
"""


def test_a_run_trains_on_the_copies_and_caches_them(tmp_path: Path, session_cache: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = json.loads((run_recipe_isolated(RECIPE, tmp_path / "a", session_cache) / "results.json").read_text())
    second = json.loads((run_recipe_isolated(RECIPE, tmp_path / "b", session_cache) / "results.json").read_text())
    n = first["domains"]["xa"]["n_utterances"]
    for tag in ("mfcc+speed1.1", "mfcc+noise20dB"):
        assert first["extraction"][tag]["computed"] + first["extraction"][tag]["cached"] == n
        assert second["extraction"][tag] == {**second["extraction"][tag], "computed": 0, "cached": n}
    assert first["runs"][0]["test"] == second["runs"][0]["test"]
