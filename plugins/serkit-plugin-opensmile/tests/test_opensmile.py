"""The ``opensmile`` extractor against the opensmile package on synthetic signals."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from pydantic import ValidationError
from serkit.errors import AudioError
from serkit.testing.extractor_contract import ExtractorContract

from serkit_plugin_opensmile.extractor import FEATURE_SETS, LEVELS, OpenSmile

opensmile = pytest.importorskip("opensmile", reason="the opensmile package is not installed (pip install opensmile)")

SR = 16000


def harmonic(seconds: float, f0: float, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    """Five harmonics of ``f0`` with 1/k amplitudes, float32 ``(seconds * sr,)``."""
    t = np.arange(round(seconds * sr)) / sr
    return (amp * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))).astype(np.float32)


def semitones_from_27_5(f0: float) -> float:
    return 12 * math.log2(f0 / 27.5)


class TestOpenSmileContract(ExtractorContract):
    """serkit's extractor contract, for functionals (vectors) and LLD frames (sequences)."""

    changed_params: ClassVar[dict[str, str]] = {"feature_set": "GeMAPSv01b"}

    @pytest.fixture(params=["functionals", "lld"])
    def extractor(self, request: pytest.FixtureRequest) -> OpenSmile:
        return OpenSmile(feature_set="eGeMAPSv02", level=request.param)


@pytest.mark.parametrize(("feature_set", "level"), [(fs, lv) for fs, levels in FEATURE_SETS.items() for lv in levels])
def test_declared_dims_equal_opensmiles_feature_names(feature_set: str, level: str) -> None:
    ext = OpenSmile(feature_set=feature_set, level=level)
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet[feature_set], feature_level=opensmile.FeatureLevel[LEVELS[level]]
    )
    assert ext.dim == len(smile.feature_names)
    assert ext.feature_names == list(smile.feature_names)
    assert ext.output == ("vector" if level == "functionals" else "sequence")


def test_the_paper_sets_have_their_published_sizes() -> None:
    assert OpenSmile().dim == 88 and OpenSmile().output == "vector"  # eGeMAPSv02 functionals by default
    assert OpenSmile(feature_set="ComParE_2016").dim == 6373
    assert OpenSmile(feature_set="eGeMAPSv02", level="lld").dim == 25
    assert OpenSmile(feature_set="ComParE_2016", level="lld").dim == 65
    assert OpenSmile(feature_set="GeMAPSv01b").dim == 62


def test_f0_of_harmonic_tones_in_egemaps_functionals() -> None:
    ext = OpenSmile(feature_set="eGeMAPSv02")
    col = ext.feature_names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    loud = ext.feature_names.index("loudness_sma3_amean")
    low = ext.extract(harmonic(1.5, 200.0))
    high = ext.extract(harmonic(1.5, 300.0))
    quiet = ext.extract(harmonic(1.5, 200.0, amp=0.03))
    assert low.shape == (88,) and low.dtype == np.float32
    # 200 Hz is 34.35 semitones above 27.5 Hz, 300 Hz 41.37
    assert low[col] == pytest.approx(semitones_from_27_5(200.0), abs=0.2)
    assert high[col] == pytest.approx(semitones_from_27_5(300.0), abs=0.2)
    assert quiet[col] == pytest.approx(low[col], abs=0.2)
    assert quiet[loud] < 0.5 * low[loud]


def test_features_are_exactly_opensmiles() -> None:
    wav = harmonic(1.0, 180.0) + np.float32(0.01) * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    ext = OpenSmile(feature_set="ComParE_2016")
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016)
    ref = smile.process_signal(wav, SR).to_numpy(dtype=np.float32)[0]
    np.testing.assert_array_equal(ext.extract(wav), ref)


def test_lld_sequences_have_one_frame_per_10_ms() -> None:
    ext = OpenSmile(feature_set="eGeMAPSv02", level="lld")
    one, two = ext.extract(harmonic(1.0, 200.0)), ext.extract(harmonic(2.0, 200.0))
    assert one.dtype == np.float32 and one.ndim == 2 and one.shape[1] == 25
    assert two.shape[0] - one.shape[0] == 100
    assert 90 <= one.shape[0] <= 100
    f0 = ext.feature_names.index("F0semitoneFrom27.5Hz_sma3nz")
    voiced = two[:, f0][two[:, f0] > 0]
    assert voiced.size > 150 and np.median(voiced) == pytest.approx(semitones_from_27_5(200.0), abs=0.2)
    compare = OpenSmile(feature_set="ComParE_2016", level="lld_deltas").extract(harmonic(1.0, 200.0))
    assert compare.ndim == 2 and compare.shape[1] == 65 and abs(compare.shape[0] - one.shape[0]) <= 5


def test_other_sample_rate() -> None:
    ext = OpenSmile(feature_set="eGeMAPSv02", sample_rate=8000)
    col = ext.feature_names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    assert ext.sample_rate == 8000
    assert ext.extract(harmonic(1.0, 250.0, sr=8000))[col] == pytest.approx(semitones_from_27_5(250.0), abs=0.2)


def test_batch_equals_one_by_one_and_pickling_drops_the_smile_object() -> None:
    ext = OpenSmile(feature_set="eGeMAPSv02", level="lld")
    wavs = [harmonic(0.5 + 0.25 * i, 150.0 + 40 * i) for i in range(3)]
    batch = ext.extract_batch(wavs)
    assert [b.shape[0] for b in batch] == sorted({b.shape[0] for b in batch})
    for b, w in zip(batch, wavs, strict=True):
        np.testing.assert_array_equal(b, ext.extract(w))
    clone = pickle.loads(pickle.dumps(ext))
    assert clone._smile is None
    np.testing.assert_array_equal(clone.extract(wavs[0]), batch[0])


def test_unknown_feature_set_lists_the_available_ones() -> None:
    with pytest.raises(ValidationError) as info:
        OpenSmile(feature_set="egemaps_v2")
    assert (
        "unknown openSMILE feature set 'egemaps_v2'; did you mean 'eGeMAPSv02'? available: eGeMAPSv02, "
        "GeMAPSv01b, ComParE_2016, emobase, IS09, IS10, IS11, IS12, IS13"
    ) in str(info.value)
    with pytest.raises(ValidationError) as info:
        OpenSmile(feature_set="xyz")
    assert "unknown openSMILE feature set 'xyz'; available: eGeMAPSv02, " in str(info.value)
    no_level = "feature set eGeMAPSv02 has no level 'lld_deltas'; levels: functionals, lld"
    with pytest.raises(ValidationError, match=no_level):
        OpenSmile(level="lld_deltas")
    with pytest.raises(ValidationError, match="Input should be 'functionals', 'lld' or 'lld_deltas'"):
        OpenSmile(level="frames")


def test_bad_waveforms_are_audio_errors() -> None:
    ext = OpenSmile()
    with pytest.raises(AudioError, match=r"opensmile expects a non-empty 1-D waveform, got shape \(2, 100\)"):
        ext.extract(np.zeros((2, 100), np.float32))
    with pytest.raises(AudioError, match=r"got shape \(0,\)"):
        ext.extract(np.zeros(0, np.float32))
    bad = harmonic(0.5, 200.0)
    bad[10] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite samples"):
        ext.extract(bad)
    with pytest.raises(AudioError) as info:
        ext.extract(harmonic(0.03, 200.0))
    assert str(info.value) == (
        "opensmile: the waveform (480 samples = 30 ms at 16000 Hz) is too short for eGeMAPSv02 functionals "
        "(openSMILE gives NaN)"
    )


def test_fingerprint_tracks_params_and_the_opensmile_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    a = OpenSmile().fingerprint()
    assert a == OpenSmile(feature_set="eGeMAPSv02", level="functionals").fingerprint()
    assert len({a, OpenSmile(level="lld").fingerprint(), OpenSmile(feature_set="ComParE_2016").fingerprint()}) == 3
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.0.1" if name == "opensmile" else real(name))
    assert OpenSmile().fingerprint() != a


def test_feature_driver_stores_functionals(tmp_path: Path) -> None:
    import soundfile as sf
    from serkit.data.utterance import Utterance
    from serkit.features import FeatureStore, extract_features

    utts = []
    for i, f0 in enumerate((150.0, 220.0, 280.0)):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, harmonic(0.8, f0), SR, subtype="PCM_16")
        utts.append(Utterance(id=f"u{i}", path=str(path), label="neutral", speaker="s"))
    ext = OpenSmile()
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(utts, ext, store, batch_size=2, num_workers=0, progress=False)
    assert (res.computed, res.failed) == (3, [])
    col = ext.feature_names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    means = [float(store.get(res.keys[u.id])[col]) for u in utts]
    assert means == sorted(means)
    assert means[1] == pytest.approx(semitones_from_27_5(220.0), abs=0.3)
