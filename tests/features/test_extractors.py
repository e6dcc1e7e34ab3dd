"""The built-in ``mfcc`` and ``ge2e`` extractors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from serkit.builtin.extractors.ge2e import Ge2e
from serkit.builtin.extractors.mfcc import Mfcc
from serkit.data.utterance import Utterance
from serkit.errors import AudioError, ModelError
from serkit.features import FeatureStore, extract_features


def test_extractor_modules_import_no_heavy_libraries():
    code = (
        "import sys\n"
        "import serkit.builtin.extractors.mfcc, serkit.builtin.extractors.ge2e, serkit.features\n"
        "heavy = [m for m in ('torch', 'librosa', 'resemblyzer', 'sklearn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- mfcc ---------------------------------------------------------------------------------
def test_mfcc_equals_librosa(make_tone):
    import librosa

    wav = make_tone(1.0, 140.0)
    ext = Mfcc()
    out = ext.extract(wav)
    assert ext.output == "sequence" and ext.sample_rate == 16000 and ext.dim == 40
    assert (ext.win_length, ext.hop_length, ext.n_fft) == (400, 160, 512)
    assert out.dtype == np.float32 and out.shape == (1 + 16000 // 160, 40)
    ref = librosa.feature.mfcc(
        y=wav, sr=16000, n_mfcc=40, n_fft=512, win_length=400, hop_length=160, n_mels=64
    )
    np.testing.assert_allclose(out, ref.T, rtol=1e-5, atol=1e-4)


def test_mfcc_deltas_and_band_limits(make_tone):
    import librosa

    wav = make_tone(0.8, 200.0, sr=8000)
    ext = Mfcc(
        sample_rate=8000, n_mfcc=13, n_mels=26, win_ms=32, hop_ms=16, deltas=2, fmin=100, fmax=3800
    )
    out = ext.extract(wav)
    assert ext.dim == 39 and out.shape == (1 + 6400 // 128, 39)
    static = librosa.feature.mfcc(
        y=wav,
        sr=8000,
        n_mfcc=13,
        n_fft=256,
        win_length=256,
        hop_length=128,
        n_mels=26,
        fmin=100,
        fmax=3800,
    )
    np.testing.assert_allclose(out[:, :13], static.T, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out[:, 13:26], librosa.feature.delta(static, order=1).T, atol=1e-4)
    np.testing.assert_allclose(out[:, 26:], librosa.feature.delta(static, order=2).T, atol=1e-4)
    assert Mfcc(deltas=1).dim == 80


def test_mfcc_short_input_with_deltas(make_tone):
    out = Mfcc(deltas=2).extract(make_tone(0.04, 150.0))  # 5 frames < the delta width 9
    assert out.shape == (5, 120) and np.all(np.isfinite(out))


def test_mfcc_cmvn(make_tone):
    wav = make_tone(1.0, 110.0)
    raw = Mfcc(deltas=1).extract(wav)
    out = Mfcc(deltas=1, cmvn=True).extract(wav)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-3)
    expected = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(out, expected, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fmin": 4000, "fmax": 3000}, r"fmax \(3000.0\) must be greater than fmin \(4000.0\)"),
        ({"fmin": 8000}, r"fmax \(8000.0\) must be greater than fmin \(8000.0\)"),
        ({"fmax": 9000}, r"fmax \(9000.0\) must be <= sample_rate / 2 \(8000.0\)"),
        ({"deltas": 3}, r"deltas\n  Input should be 0, 1 or 2"),
        ({"n_mfcc": 80}, r"n_mfcc \(80\) must be <= n_mels \(64\)"),
        ({"hop_ms": 0}, r"hop_ms\n  Input should be greater than 0"),
        ({"n_mels": -1}, r"n_mels\n  Input should be greater than 0"),
        ({"win_ms": 0.01}, r"give 0 and 160 samples at 16000 Hz; need at least 2 and 1"),
        ({"n_fft": 512}, r"n_fft\n  Extra inputs are not permitted"),
    ],
)
def test_mfcc_params_are_validated(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Mfcc(**kwargs)


def test_mfcc_fingerprint_follows_params():
    assert Mfcc().fingerprint() == Mfcc(n_mfcc=40).fingerprint()
    assert Mfcc().fingerprint() != Mfcc(deltas=1).fingerprint()


# -- ge2e ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ge2e():
    """One loaded encoder for the module; torch runs single-threaded meanwhile, because a
    3-layer LSTM over 160 steps synchronises its threads ~500 times per pass and becomes
    very slow when the 2 CPU cores are shared with other work (restored afterwards)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ext = Ge2e()
    ext.load_encoder()
    yield ext
    torch.set_num_threads(threads)


def test_ge2e_matches_resemblyzer_embed_utterance(ge2e, make_tone):
    wavs = [make_tone(1.0, 120.0, 1), make_tone(2.3, 210.0, 2), make_tone(0.7, 300.0, 3)]
    out = ge2e.extract_batch(wavs)
    encoder = ge2e.load_encoder()
    assert encoder is ge2e.load_encoder()  # loaded once
    assert ge2e.output == "vector" and ge2e.dim == 256 and ge2e.sample_rate == 16000
    for wav, vec in zip(wavs, out, strict=True):
        assert vec.shape == (256,) and vec.dtype == np.float32
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
        ref = encoder.embed_utterance(ge2e.preprocess(wav), rate=1.3, min_coverage=0.75)
        np.testing.assert_allclose(vec, ref, atol=1e-5)
    # batching does not change the result
    np.testing.assert_allclose(ge2e.extract(wavs[1]), out[1], atol=1e-5)
    # different voices give different vectors
    assert float(out[0] @ out[2]) < 0.999


def test_ge2e_rate_and_coverage_are_used(ge2e, make_tone):
    wav = make_tone(3.0, 150.0)
    other = Ge2e(rate=2.0, min_coverage=0.5)
    other._encoder = ge2e.load_encoder()
    ref = ge2e.load_encoder().embed_utterance(other.preprocess(wav), rate=2.0, min_coverage=0.5)
    np.testing.assert_allclose(other.extract(wav), ref, atol=1e-5)
    assert not np.allclose(other.extract(wav), ge2e.extract(wav), atol=1e-5)


def test_ge2e_trimming_and_its_fallback(ge2e, make_tone):
    import resemblyzer

    voiced = np.concatenate(
        [make_tone(0.8, 150.0), np.zeros(16000, np.float32), make_tone(0.8, 180.0)]
    )
    trimmed = ge2e.preprocess(voiced)
    assert len(trimmed) < len(voiced) - 8000  # the second of silence is cut
    untrimmed = Ge2e(trim_silence=False)
    assert len(untrimmed.preprocess(voiced)) == len(voiced)
    # white noise: the VAD keeps nothing, so the (volume-normalised) input is used
    noise = (0.01 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32)
    normalised = resemblyzer.normalize_volume(noise, -30, increase_only=True)
    assert len(resemblyzer.trim_long_silences(normalised)) == 0
    np.testing.assert_allclose(ge2e.preprocess(noise), normalised, rtol=1e-6)
    assert ge2e.extract(noise).shape == (256,)


def test_ge2e_rejects_silence(ge2e):
    with pytest.raises(AudioError, match="all zeros"):
        ge2e.extract(np.zeros(16000, np.float32))


def test_ge2e_params_are_validated():
    with pytest.raises(ValidationError, match=r"lr_scale\n  Input should be greater than 0"):
        Ge2e(lr_scale=0)
    with pytest.raises(ValidationError, match=r"min_coverage\n  Input should be less than"):
        Ge2e(min_coverage=1.5)
    with pytest.raises(ValidationError, match=r"rate\n  Input should be greater than or equal"):
        Ge2e(rate=0.5)
    assert Ge2e(finetune=True, lr_scale=0.1).params.finetune is True
    with pytest.raises(ModelError, match="device 'nonsense' is not a torch device"):
        Ge2e(device="nonsense").load_encoder()


def test_ge2e_explains_the_webrtcvad_fix(monkeypatch):
    import importlib.abc

    for name in list(sys.modules):
        if name == "resemblyzer" or name.startswith("resemblyzer.") or name == "webrtcvad":
            monkeypatch.delitem(sys.modules, name)

    class NoPkgResources(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname == "webrtcvad":
                raise ModuleNotFoundError("No module named 'pkg_resources'", name="pkg_resources")
            return None

    monkeypatch.setattr(sys, "meta_path", [NoPkgResources(), *sys.meta_path])
    with pytest.raises(
        ModelError, match=r"pip install --force-reinstall --no-deps webrtcvad-wheels"
    ):
        Ge2e().load_encoder()


def test_ge2e_through_the_driver(tmp_path, make_wav, ge2e):
    paths = [
        make_wav(f"v{i}.wav", seconds=1.0 + 0.3 * i, f0=110 + 40 * i, seed=i) for i in range(5)
    ]
    utts = [Utterance(f"u{i}", str(p), "happy", "s") for i, p in enumerate(paths)]
    store = FeatureStore(tmp_path / "store", ge2e, dtype="float16")
    res = extract_features(utts, ge2e, store, batch_size=2, num_workers=2, progress=False)
    assert res.computed == 5 and len(store) == 5
    from serkit.data.audio import load_audio

    for u in utts:
        got = store.get(res.keys[u.id])
        np.testing.assert_allclose(got, ge2e.extract(load_audio(u.path, 16000)), atol=1e-3)


def test_runtime_params_do_not_change_the_cache_key() -> None:
    from serkit.builtin.extractors.ge2e import Ge2e

    assert Ge2e(device="cpu").fingerprint() == Ge2e(device="cuda:0").fingerprint()
    assert Ge2e(rate=1.3).fingerprint() != Ge2e(rate=2.0).fingerprint()
