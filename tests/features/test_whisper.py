"""The ``whisper`` extractor on a tiny random Whisper checkpoint (no download).

The tiny checkpoint (:func:`serkit.testing.tiny_hf.save_tiny_whisper`: 3 encoder layers,
d_model 32) has 3-s windows (``max_source_positions=150``, a feature extractor with
``chunk_length=3``) so that chunking is exercised on short audio; everything else is as in
the real models (80 mel bins, 10-ms hop, stride-2 second convolution: 50 frames a second).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from serkit.builtin.extractors.whisper import Whisper
from serkit.errors import AudioError, ModelError
from serkit.testing.extractor_contract import ExtractorContract, check_extractor
from serkit.testing.tiny_hf import save_tiny_whisper

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded

WINDOW = 3 * 16000  # samples of one window of the tiny checkpoint
H = 32
N_STATES = 4


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny")


def _wav(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * (150 + 30 * seed) * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _reference_states(folder: Path, wav: np.ndarray) -> np.ndarray:
    """All hidden states of the uncropped 3-s window, straight from transformers: ``(150, N_STATES, H)``."""
    fe = transformers.WhisperFeatureExtractor.from_pretrained(folder)
    mel = fe(wav, sampling_rate=16000, return_tensors="pt")["input_features"]
    encoder = transformers.WhisperForConditionalGeneration.from_pretrained(folder).eval().model.encoder
    with torch.inference_mode():
        hidden = encoder(mel, output_hidden_states=True).hidden_states
    return torch.stack(hidden, dim=2)[0].numpy()


# -- import cost, params ------------------------------------------------------------------
def test_registered_and_params():
    from serkit.plugins import get_registry

    assert get_registry().get("extractor", "whisper") is Whisper
    assert Whisper(model="m").params.pool == "none"
    with pytest.raises(ValidationError, match="less than or equal to 30"):
        Whisper(model="m", max_chunk_seconds=31)
    for bad in ([], [1, 1], True, "all"):
        with pytest.raises(ValidationError):
            Whisper(model="m", layer=bad)
    with pytest.raises(ValidationError):
        Whisper(model="m", pool="max")


# -- shapes and cropping ------------------------------------------------------------------
def test_declared_shapes(ckpt):
    ext = Whisper(model=str(ckpt))
    assert (ext.output, ext.sample_rate, ext.hidden_size, ext.dim, ext.n_layers) == ("sequence", 16000, H, H, 1)
    assert (ext.stride, ext.receptive_field, ext.window_frames, ext.max_chunk_samples) == (320, 400, 150, WINDOW)
    weighted = Whisper(model=str(ckpt), layer="weighted")
    assert (weighted.n_layers, weighted.dim) == (N_STATES, N_STATES * H)
    pooled = Whisper(model=str(ckpt), layer="weighted", pool="mean_std")
    assert (pooled.output, pooled.dim, pooled.layer_width) == ("vector", N_STATES * 2 * H, 2 * H)
    for n in (400, 401, 20000, 47999, WINDOW):
        assert ext.num_frames(n) == math.ceil(n / 320)


@pytest.mark.parametrize("n", [400, 7777, 20000, WINDOW])
def test_cropped_frames_equal_the_uncropped_encoder_output(ckpt, n):
    wav = _wav(n, seed=1)
    ref = _reference_states(ckpt, wav)  # (150, 4, 32): the whole padded window
    frames = math.ceil(n / 320)
    weighted = Whisper(model=str(ckpt), layer="weighted").extract(wav)
    assert weighted.shape == (frames, N_STATES * H) and weighted.dtype == np.float32
    np.testing.assert_allclose(weighted.reshape(frames, N_STATES, H), ref[:frames], atol=1e-5)
    for layer in (0, 1, 2, -1):
        out = Whisper(model=str(ckpt), layer=layer).extract(wav)
        np.testing.assert_allclose(out, ref[:frames, layer], atol=1e-5)
    avg = Whisper(model=str(ckpt), layer=[0, 3]).extract(wav)
    np.testing.assert_allclose(avg, (ref[:frames, 0] + ref[:frames, 3]) / 2, atol=1e-5)


def test_only_the_needed_layers_run(ckpt):
    """Layers above the highest selected state are dropped; the last state has a final norm, so one more stays."""
    kept = {layer: len(Whisper(model=str(ckpt), layer=layer).load_model().layers) for layer in (0, 1, 2, 3, -1)}
    assert kept == {0: 1, 1: 2, 2: 3, 3: 3, -1: 3}
    assert len(Whisper(model=str(ckpt), layer="weighted").load_model().layers) == 3
    assert len(Whisper(model=str(ckpt), layer=[0, 1]).load_model().layers) == 2
    # no decoder is loaded
    assert not any("decoder" in name for name, _ in Whisper(model=str(ckpt)).load_model().named_parameters())


# -- chunks and batches -------------------------------------------------------------------
def test_long_audio_is_chunked_and_joined(ckpt):
    ext = Whisper(model=str(ckpt), layer="weighted")
    n = 2 * WINDOW + 12345  # 3 windows' worth
    bounds = ext.chunk_bounds(n)
    # ceil(108345 / 48000) = 3 chunks of ceil(108345 / 3) = 36115 -> 36160 samples (113 frames)
    assert bounds == [(0, 36160), (36160, 72320), (72320, n)]
    assert all(a % 320 == 0 for a, _ in bounds)
    wav = _wav(n, seed=2)
    got = ext.extract(wav)
    alone = np.concatenate([ext.extract(wav[a:b]) for a, b in bounds])
    assert got.shape == (ext.num_frames(n), N_STATES * H) == (113 + 113 + math.ceil((n - 72320) / 320), 128)
    np.testing.assert_allclose(got, alone, atol=1e-5)
    # 50 frames a second across the joins: the frame count of the whole equals ceil(n / 320)
    assert got.shape[0] == math.ceil(n / 320)
    shorter = Whisper(model=str(ckpt), max_chunk_seconds=1.0)
    assert shorter.max_chunk_samples == 16000 and len(shorter.chunk_bounds(n)) == 7


def test_batch_equals_one_by_one(ckpt):
    ext = Whisper(model=str(ckpt), layer="weighted")
    wavs = [_wav(n, seed=i) for i, n in enumerate((30000, 401, 2 * WINDOW + 5000, 16000))]
    calls: list[tuple[int, ...]] = []
    ext.load_model().register_forward_hook(lambda m, args, out: calls.append(tuple(args[0].shape)))
    batch = ext.extract_batch(wavs)
    # 1 + 1 + 3 + 1 = 6 windows, all of the same 3-s shape, in passes of up to len(wavs) = 4
    assert calls == [(4, 80, 300), (2, 80, 300)]
    for wav, got in zip(wavs, batch, strict=True):
        alone = ext.extract(wav)
        assert got.shape == alone.shape == (ext.num_frames(len(wav)), N_STATES * H)
        np.testing.assert_allclose(got, alone, atol=1e-5)
    assert ext.extract_batch([]) == []


def test_deterministic_across_instances(ckpt):
    wav = _wav(23456, seed=3)
    a = Whisper(model=str(ckpt), layer="weighted").extract(wav)
    b = Whisper(model=str(ckpt), layer="weighted").extract(wav)
    np.testing.assert_array_equal(a, b)


# -- pooled storage -----------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["weighted", -1, [1, 2]])
def test_pooled_equals_pooling_the_frames(ckpt, layer):
    wav = _wav(2 * WINDOW + 700, seed=4)  # chunked: pooling spans every chunk
    frames = Whisper(model=str(ckpt), layer=layer).extract(wav).astype(np.float64)
    n_layers = N_STATES if layer == "weighted" else 1
    split = frames.reshape(frames.shape[0], n_layers, H)
    mean = Whisper(model=str(ckpt), layer=layer, pool="mean").extract(wav)
    assert mean.shape == (n_layers * H,)
    np.testing.assert_allclose(mean, split.mean(axis=0).reshape(-1), atol=1e-5)
    both = Whisper(model=str(ckpt), layer=layer, pool="mean_std")
    stats = both.extract(wav)
    expected = np.concatenate([split.mean(axis=0), split.std(axis=0)], axis=-1)  # (n_layers, 2H)
    np.testing.assert_allclose(both.split_layers(stats), expected, atol=1e-5)


# -- contract -----------------------------------------------------------------------------
@pytest.mark.parametrize("pool", ["none", "mean_std"])
def test_extractor_contract(ckpt, pool):
    ext = Whisper(model=str(ckpt), layer="weighted", pool=pool)
    assert check_extractor(ext, changed_params={"layer": 0}) == []
    assert check_extractor(ext, changed_params={"pool": "mean" if pool != "mean" else "none"}) == []


class TestWhisperContract(ExtractorContract):
    changed_params: ClassVar[dict[str, Any]] = {"layer": 1}

    @pytest.fixture
    def extractor(self, tmp_path):
        return Whisper(model=str(save_tiny_whisper(tmp_path / "w")), layer=-1)


def test_fingerprint_follows_pool_and_the_weights(tmp_path, ckpt):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(ckpt, folder)
    prints = {pool: Whisper(model=str(folder), layer="weighted", pool=pool).fingerprint() for pool in
              ("none", "mean", "mean_std")}
    assert len(set(prints.values())) == 3
    save_tiny_whisper(folder, seed=1)
    assert Whisper(model=str(folder), layer="weighted").fingerprint() != prints["none"]
    assert Whisper(model=str(folder), device="cpu").fingerprint() == Whisper(model=str(folder)).fingerprint()


# -- errors -------------------------------------------------------------------------------
def test_bad_waveforms(ckpt):
    ext = Whisper(model=str(ckpt))
    with pytest.raises(AudioError, match=r"399 samples, fewer than the receptive field .* \(400 samples = 25 ms"):
        ext.extract(np.zeros(399, np.float32))
    with pytest.raises(AudioError, match="1-D"):
        ext.extract(np.zeros((2, 1000), np.float32))
    bad = _wav(1000)
    bad[3] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        ext.extract(bad)


def test_wrong_model_type_and_missing_folder(tmp_path):
    transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    wrong = r"extractor 'whisper': .* model_type 'wav2vec2'; supported: whisper .*'hf_ssl'"
    with pytest.raises(ModelError, match=wrong):
        _ = Whisper(model=str(tmp_path)).dim
    with pytest.raises(ModelError, match=r"extractor 'whisper': model folder .*nope does not exist \(field 'model'\)"):
        _ = Whisper(model=str(tmp_path / "nope")).dim


def test_unknown_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    unknown = r"extractor 'whisper': model 'serkit-tests/no-whisper': cannot load the config"
    with pytest.raises(ModelError, match=unknown):
        _ = Whisper(model="serkit-tests/no-whisper").dim


def test_feature_extractor_must_fit_the_encoder(tmp_path):
    folder = save_tiny_whisper(tmp_path / "nofe", preprocessor=False)  # defaults: 30-s windows, 3000 mel frames
    with pytest.warns(UserWarning, match="no feature extractor config"):
        with pytest.raises(ModelError, match=r"makes 3000 mel frames per window but the encoder expects 300"):
            _ = Whisper(model=str(folder)).dim
    transformers.WhisperFeatureExtractor(feature_size=128, chunk_length=3).save_pretrained(folder)
    with pytest.raises(ModelError, match=r"makes 128 mel bins but the encoder expects num_mel_bins=80"):
        _ = Whisper(model=str(folder)).dim


def test_half_precision_on_cpu_falls_back_to_float32(ckpt):
    ext = Whisper(model=str(ckpt), dtype="bfloat16", device="cpu")
    with pytest.warns(UserWarning, match="dtype bfloat16 needs a GPU"):
        out = ext.extract(_wav(5000))
    np.testing.assert_allclose(out, Whisper(model=str(ckpt)).extract(_wav(5000)), atol=1e-6)
