"""``load_model(...).predict`` on an hour of audio: whole files up to MAX_DURATION, windows streamed beyond.

Peak RSS is measured in one fresh process after the model has made a warm-up
prediction, so that only the long inputs' own memory counts: first the streamed windows
of a file longer than the maximum, then a whole one-hour file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RECIPE = """\
name: longpredict
seed: 0
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 2, per_class: 4, emotions: [angry, sad]}}
features:
  mfcc:
    extractor: {type: mfcc, sample_rate: 8000, n_mfcc: 13, hop_ms: 20}
    encoder: {type: mean_pool, stats: true}
heads:
  default: {type: mlp, hidden: [8]}
train: {epochs: 1, batch_size: 8}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Iterator[Path]:
    from serkit.testing.cli import run_recipe_isolated

    yield run_recipe_isolated(RECIPE, tmp_path_factory.mktemp("longpredict"), session_cache)


@pytest.fixture(scope="module")
def too_long(tmp_path_factory: pytest.TempPathFactory, make_noise: Callable[..., Path]) -> Path:
    """MAX_DURATION + 60 s of noise at 1 kHz (7 MB)."""
    return make_noise(tmp_path_factory.mktemp("too_long") / "long.wav", 3660, sr=1000)


@pytest.fixture(scope="module")
def measured(
    run: Path,
    hour_file: Path,
    too_long: Path,
    tmp_path_factory: pytest.TempPathFactory,
    make_noise: Callable[..., Path],
    peak_memory: Callable[..., list[tuple[Any, float]]],
) -> list[tuple[Any, float]]:
    warm = make_noise(tmp_path_factory.mktemp("warm") / "warm.wav", 40)
    setup = f"""
        from serkit.inference import load_model
        model = load_model({str(run)!r})
        model.predict({str(warm)!r}, window_seconds=30.0)  # first-call allocations happen here
        model.predict({str(warm)!r})
    """
    streamed = f"""
        p = model.predict({str(too_long)!r}, window_seconds=30.0, batch_size=8)
        result = [len(p.windows), p.windows[-1].start, p.windows[-1].end, sum(p.probabilities.values())]
    """
    whole = f"""
        p = model.predict({str(hour_file)!r})
        result = [p.label, sum(p.probabilities.values()), p.windows]
    """
    return peak_memory(setup, streamed, whole)


def test_whole_file_prediction_refuses_more_than_the_maximum(run: Path, too_long: Path) -> None:
    from serkit.errors import AudioError
    from serkit.inference import load_model

    with pytest.raises(AudioError) as info:
        load_model(run).predict(str(too_long))
    assert str(info.value) == (
        f"{too_long}: audio is 3660.0 s long; the maximum is 3600 s (cut long recordings into utterances; "
        "predict with window_seconds streams files of any length)"
    )


def test_windows_of_a_file_longer_than_the_maximum_are_streamed(measured: list[tuple[Any, float]]) -> None:
    (n, last_start, last_end, total), rise = measured[0]
    assert n == 122 and last_start == pytest.approx(3630.0) and last_end == pytest.approx(3660.0)
    assert total == pytest.approx(1.0)
    # the whole file at the model's 8 kHz would be 112 MiB; streamed, a few windows are held
    assert rise < 64, f"streaming 3660 s raised the peak RSS by {rise:.0f} MiB"


def test_a_whole_hour_is_predicted_within_the_documented_memory(measured: list[tuple[Any, float]]) -> None:
    (label, total, windows), rise = measured[1]
    assert label in ("angry", "sad") and total == pytest.approx(1.0) and windows is None
    # the 8 kHz waveform (110 MiB) and mfcc's intermediate arrays (measured 345 to 925 MiB in all)
    assert rise < 1280, f"predicting 1 h whole raised the peak RSS by {rise:.0f} MiB"
