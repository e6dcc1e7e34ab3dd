"""The ``hf_ssl`` extractor on tiny random wav2vec2 / HuBERT / WavLM / data2vec checkpoints."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from serkit.builtin.extractors.hf_ssl import HfSsl
from serkit.data.utterance import Utterance
from serkit.errors import AudioError, ModelError
from serkit.features import FeatureStore, extract_features
from serkit.testing.tiny_hf import TINY_SSL_CONFIG

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

TINY = TINY_SSL_CONFIG
#: name -> (config class, model class, extra config, do_normalize, padded+masked batches)
KINDS = {
    "wav2vec2_group": ("Wav2Vec2Config", "Wav2Vec2Model", {"feat_extract_norm": "group"}, False, False),
    "wav2vec2_layer": (
        "Wav2Vec2Config",
        "Wav2Vec2Model",
        {"feat_extract_norm": "layer", "do_stable_layer_norm": True},
        True,
        True,
    ),
    "hubert_layer": ("HubertConfig", "HubertModel", {"feat_extract_norm": "layer"}, False, True),
    "wavlm_group": ("WavLMConfig", "WavLMModel", {"feat_extract_norm": "group"}, False, False),
    "wavlm_layer": ("WavLMConfig", "WavLMModel", {"feat_extract_norm": "layer"}, True, True),
    "data2vec": ("Data2VecAudioConfig", "Data2VecAudioModel", {"num_conv_pos_embeddings": 5}, False, False),
}
KINDS = {k: v for k, v in KINDS.items() if hasattr(transformers, v[1])}


def _tiny_config(kind: str):
    cfg_cls, _, extra, _, _ = KINDS[kind]
    return getattr(transformers, cfg_cls)(**{**TINY, **extra})


def _save(folder: Path, kind: str, seed: int = 0, weights: bool = True, normalize: bool | None = None) -> Path:
    """A tiny random checkpoint as save_pretrained writes it."""
    _, model_cls, _, do_normalize, _ = KINDS[kind]
    config = _tiny_config(kind)
    if weights:
        torch.manual_seed(seed)
        getattr(transformers, model_cls)(config).save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        sampling_rate=16000,
        do_normalize=do_normalize if normalize is None else normalize,
        return_attention_mask=KINDS[kind][4],
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_ckpt")
    return {kind: _save(root / kind, kind) for kind in KINDS}


def _wav(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    y = 0.3 * np.sin(2 * np.pi * (120 + 40 * seed) * t) + 0.05 * rng.standard_normal(n)
    return y.astype(np.float32)


def _frames(n: int) -> int:
    for k, s in zip(TINY["conv_kernel"], TINY["conv_stride"], strict=True):
        n = (n - k) // s + 1
    return n


def _reference_states(folder: Path, kind: str, wav: np.ndarray) -> list[np.ndarray]:
    """hidden_states computed directly with transformers: its own feature extractor + model."""
    fe = transformers.AutoFeatureExtractor.from_pretrained(folder)
    inputs = fe(wav, sampling_rate=16000, return_tensors="pt")
    model = getattr(transformers, KINDS[kind][1]).from_pretrained(folder).eval()
    with torch.inference_mode():
        out = model(inputs["input_values"], output_hidden_states=True)
    return [h[0].numpy() for h in out.hidden_states]


# -- import cost, params ------------------------------------------------------------------
@pytest.mark.parametrize("module", ["hf_ssl", "hf_base", "whisper"])
def test_module_imports_no_heavy_libraries(module):
    code = (
        "import sys\n"
        f"import serkit.builtin.extractors.{module}\n"
        "print(','.join(m for m in ('torch', 'transformers', 'librosa') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_params_validation():
    assert HfSsl(model="m").params.layer == -1
    assert HfSsl(model="m", layer="weighted").params.layer == "weighted"
    assert HfSsl(model="m", layer=[0, 2]).params.layer == [0, 2]
    for bad in ([], [1, 1], True, "all"):
        with pytest.raises(ValidationError):
            HfSsl(model="m", layer=bad)
    with pytest.raises(ValidationError):
        HfSsl(model="")
    with pytest.raises(ValidationError):
        HfSsl(model="m", max_chunk_seconds=0.0)
    with pytest.raises(ValidationError):
        HfSsl(model="m", dtype="float64")
    assert all(f.description for f in HfSsl.Params.model_fields.values())


# -- shapes and layers --------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_layers_equal_the_models_hidden_states(checkpoints, kind):
    folder = checkpoints[kind]
    wav = _wav(16000, seed=1)
    ref = _reference_states(folder, kind, wav)  # 3 x (L, 32); normalised as the checkpoint says
    n_frames = _frames(16000)
    assert n_frames == 399 and ref[0].shape == (n_frames, 32)

    last = HfSsl(model=str(folder))
    out = last.extract(wav)
    assert last.output == "sequence" and last.sample_rate == 16000 and last.dim == 32
    assert last.normalize is KINDS[kind][3]
    assert out.dtype == np.float32 and out.shape == (n_frames, 32) == (last.num_frames(16000), 32)
    np.testing.assert_allclose(out, ref[-1], atol=1e-5)
    for layer in (0, 1, -2):
        np.testing.assert_allclose(HfSsl(model=str(folder), layer=layer).extract(wav), ref[layer], atol=1e-5)
    avg = HfSsl(model=str(folder), layer=[0, 2]).extract(wav)
    np.testing.assert_allclose(avg, (ref[0] + ref[2]) / 2, atol=1e-5)

    weighted = HfSsl(model=str(folder), layer="weighted")
    assert (weighted.n_layers, weighted.hidden_size, weighted.dim) == (3, 32, 96)
    w = weighted.extract(wav)
    assert w.shape == (n_frames, 96)
    split = weighted.split_layers(w)
    assert split.shape == (n_frames, 3, 32)
    np.testing.assert_allclose(split, np.stack(ref, axis=1), atol=1e-5)
    batch = weighted.split_layers(torch.from_numpy(np.stack([w, w])))  # (B, L, dim) tensors too
    assert tuple(batch.shape) == (2, n_frames, 3, 32)


def test_normalize_param_overrides_the_checkpoint(checkpoints):
    folder = checkpoints["wav2vec2_group"]  # do_normalize False
    wav = _wav(8000, seed=2) * 3 + 0.5
    on = HfSsl(model=str(folder), normalize=True)
    assert on.normalize and not HfSsl(model=str(folder)).normalize
    x = wav.astype(np.float64)
    manual = ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)
    np.testing.assert_allclose(on.prepare(wav), manual, atol=1e-6)
    np.testing.assert_allclose(on.extract(wav), HfSsl(model=str(folder)).extract(manual), atol=1e-5)


def test_split_layers_rejects_a_wrong_width(checkpoints):
    ext = HfSsl(model=str(checkpoints["hubert_layer"]), layer="weighted")
    with pytest.raises(ModelError, match=r"split_layers expects \(\.\.\., 96\).*got shape \(5, 32\)"):
        ext.split_layers(np.zeros((5, 32), np.float32))
    assert HfSsl(model=str(checkpoints["hubert_layer"])).split_layers(np.zeros((5, 32))).shape == (5, 1, 32)


def test_layer_out_of_range(checkpoints):
    with pytest.raises(ModelError, match=r"layer 3 is out of range .* 3 hidden states"):
        _ = HfSsl(model=str(checkpoints["wavlm_group"]), layer=3).dim
    with pytest.raises(ModelError, match=r"layer -4 is out of range"):
        _ = HfSsl(model=str(checkpoints["wavlm_group"]), layer=[0, -4]).dim
    assert HfSsl(model=str(checkpoints["wavlm_group"]), layer=[-3, 2]).layer_indices == [0, 2]


# -- batching -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_batch_equals_one_by_one(checkpoints, kind):
    ext = HfSsl(model=str(checkpoints[kind]), layer="weighted", max_padding=3.0)
    masked = kind != "data2vec"  # group-norm checkpoints too: their group norm is masked per item
    assert ext.batches_with_mask is masked
    wavs = [_wav(n, seed=i) for i, n in enumerate((3000, 1900, 3000, 2411, 61))]
    calls = []
    ext.load_model().register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    batch = ext.extract_batch(wavs)
    # masked models mix lengths in one padded pass (here up to 3x padding); the others only batch equal lengths
    expected = [(5, 3000)] if masked else [(2, 3000), (1, 2411), (1, 1900), (1, 61)]
    assert [tuple(c) for c in calls] == expected
    for wav, got in zip(wavs, batch, strict=True):
        alone = ext.extract(wav)
        assert got.shape == alone.shape == (_frames(len(wav)), 96)
        np.testing.assert_allclose(got, alone, atol=1e-4)
    assert ext.extract_batch([]) == []


def test_length_buckets_bound_the_padding(checkpoints):
    lengths = [3000, 1900, 3000, 2411, 61, 2900, 1850]
    assert HfSsl(model=str(checkpoints["wavlm_group"])).max_padding == 0.0  # on CPU: equal lengths only
    cpu = HfSsl(model=str(checkpoints["wavlm_group"]), max_padding=0.05)
    assert cpu._groups(lengths, 10**9) == [[0, 2, 5], [3], [1, 6], [4]]
    assert HfSsl(model=str(checkpoints["wavlm_group"]), max_padding=0.1)._groups(lengths, 10**9) == [
        [0, 2, 5, 3],  # 4 x 3000 <= 1.1 x 11311, but 5 x 3000 > 1.1 x 13211
        [1, 6],
        [4],
    ]
    wide = HfSsl(model=str(checkpoints["wavlm_group"]), max_padding=0.3)
    assert wide._groups(lengths, 10**9) == [[0, 2, 5, 3, 1, 6], [4]]
    assert cpu._groups(lengths, 6000) == [[0, 2], [5], [3], [1, 6], [4]]  # and the sample budget
    no_mask = HfSsl(model=str(checkpoints["data2vec"]), max_padding=1.0)
    assert no_mask._groups(lengths, 10**9) == [[0, 2], [5], [3], [1], [6], [4]]  # equal lengths only
    # max_padding changes no number: it is not part of the cache key
    assert cpu.fingerprint() == wide.fingerprint()


def test_padding_without_mask_would_be_wrong(checkpoints):
    """Why group-norm checkpoints are never padded: the numbers change by far more than 1e-4."""
    folder = checkpoints["wav2vec2_group"]
    model = transformers.Wav2Vec2Model.from_pretrained(folder).eval()
    a, b = _wav(3000, 0), _wav(1900, 1)
    padded = torch.zeros(2, 3000)
    padded[0], padded[1, :1900] = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        together = model(padded).last_hidden_state[1, : _frames(1900)].numpy()
    assert np.abs(together - HfSsl(model=str(folder)).extract(b)).max() > 1e-2


# -- chunking -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["wav2vec2_group", "wavlm_layer"])
def test_chunks_are_concatenated(checkpoints, kind):
    folder = str(checkpoints[kind])
    ext = HfSsl(model=folder, max_chunk_seconds=0.1, normalize=False)  # 1600 samples, stride 40
    assert (ext.stride, ext.receptive_field, ext.max_chunk_samples) == (40, 60, 1600)
    bounds = ext.chunk_bounds(5000)
    # ceil(5000 / 1600) = 4 chunks of ceil(5000 / 4) = 1250 -> 1280 samples (32 strides)
    assert bounds == [(0, 1280), (1280, 2560), (2560, 3840), (3840, 5000)]
    assert ext.chunk_bounds(1600) == [(0, 1600)]
    wav = _wav(5000, seed=3) * 2 + 0.1
    whole = HfSsl(model=folder, normalize=False)
    expected = np.concatenate([whole.extract(wav[a:b]) for a, b in bounds])
    got = ext.extract(wav)
    assert got.shape == (ext.num_frames(5000), 32) == (3 * _frames(1280) + _frames(1160), 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # normalisation uses the whole waveform, before cutting
    normed = HfSsl(model=folder, max_chunk_seconds=0.1, normalize=True)
    x = normed.prepare(wav)
    expected = np.concatenate([whole.extract(x[a:b]) for a, b in bounds])
    np.testing.assert_allclose(normed.extract(wav), expected, atol=1e-5)
    # batches of several long waveforms give the same as one by one
    pair = ext.extract_batch([wav, wav[:3300]])
    np.testing.assert_allclose(pair[0], got, atol=1e-4)
    np.testing.assert_allclose(pair[1], ext.extract(wav[:3300]), atol=1e-4)


def test_chunk_rest_shorter_than_the_receptive_field_joins_the_previous_chunk(checkpoints):
    ext = HfSsl(model=str(checkpoints["hubert_layer"]), max_chunk_seconds=0.1)
    # 640 chunks: size ceil(1_023_050 / 640) = 1599 -> 1600, the rest 1_023_050 - 639 * 1600 = 650
    assert ext.chunk_bounds(1_023_050)[-1] == (639 * 1600, 1_023_050)
    bounds = ext.chunk_bounds(1600 * 639 + 50)  # 640 chunks of 1600 would leave 50 < 60 samples
    assert bounds[-1] == (638 * 1600, 1600 * 639 + 50) and len(bounds) == 639
    assert all(b - a == 1600 for a, b in bounds[:-1])


# -- bad audio ----------------------------------------------------------------------------
def test_bad_waveforms(checkpoints):
    ext = HfSsl(model=str(checkpoints["wav2vec2_group"]))
    assert ext.extract(_wav(60)).shape == (1, 32)
    with pytest.raises(AudioError, match=r"59 samples, fewer than the receptive field .* \(60 samples = 3.75 ms"):
        ext.extract(_wav(59))
    bad = _wav(800)
    bad[3] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        ext.extract_batch([_wav(800), bad])
    with pytest.raises(AudioError, match=r"1-D waveform, got shape \(2, 800\)"):
        ext.extract(np.zeros((2, 800), np.float32))


# -- loading errors -----------------------------------------------------------------------
def test_missing_folder_and_folder_without_config(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelError, match=rf"model folder {missing} does not exist \(field 'model'\)"):
        _ = HfSsl(model=str(missing)).dim
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match=rf"model folder {empty} has no config.json"):
        _ = HfSsl(model=str(empty)).sample_rate
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        _ = HfSsl(model=str(tmp_path / "file.bin")).dim


def test_unknown_hub_id_offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ext = HfSsl(model="serkit-tests/no-such-model", revision="v2")
    with pytest.raises(ModelError) as info:
        _ = ext.dim
    msg = str(info.value)
    assert "model 'serkit-tests/no-such-model' (revision 'v2'): cannot load the config" in msg
    assert f"not in the Hugging Face cache {constants.HF_HUB_CACHE}" in msg
    assert "downloads are off (HF_HUB_OFFLINE=1)" in msg
    assert "`hf download serkit-tests/no-such-model --revision v2`" in msg
    assert "`huggingface-cli download serkit-tests/no-such-model --revision v2`" in msg
    assert "AutoModel.from_pretrained('serkit-tests/no-such-model', revision='v2')" in msg
    assert "or set 'model' to a local folder (there is no folder " in msg
    explicit = HfSsl(model="serkit-tests/no-such-model", local_files_only=True)
    with pytest.raises(ModelError, match="and local_files_only is set"):
        _ = explicit.sample_rate


def test_unsupported_model_type(tmp_path):
    transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match=r"has model_type 'bert'; supported: wav2vec2, hubert, wavlm"):
        _ = HfSsl(model=str(tmp_path)).dim


def test_missing_transformers(checkpoints, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelError, match=r"needs the optional dependency transformers.*pip install 'serkit\[hf\]'"):
        _ = HfSsl(model=str(checkpoints["wav2vec2_group"])).dim


def test_dim_from_the_config_alone(tmp_path, monkeypatch):
    folder = _save(tmp_path / "cfg_only", "wavlm_layer", weights=False)
    assert not list(folder.glob("*.safetensors"))

    def no_weights(*args, **kwargs):
        raise AssertionError("the weights must not be loaded to know dim")

    ext = HfSsl(model=str(folder), layer="weighted")
    with monkeypatch.context() as patch:
        patch.setattr(transformers.AutoModel, "from_pretrained", no_weights)
        assert (ext.dim, ext.n_layers, ext.sample_rate, ext.stride, ext.num_frames(16000)) == (96, 3, 16000, 40, 399)
    with pytest.raises(ModelError, match=rf"cannot load the weights from model folder {folder}"):
        ext.load_model()


def test_folder_without_preprocessor_config_uses_defaults(tmp_path):
    folder = _save(tmp_path / "bare", "hubert_layer")
    (folder / "preprocessor_config.json").unlink()
    with pytest.warns(UserWarning, match="assuming 16000 Hz and do_normalize=False"):
        ext = HfSsl(model=str(folder))
        assert ext.sample_rate == 16000 and ext.normalize is False
    assert ext.extract(_wav(1000)).shape == (_frames(1000), 32)


def test_half_precision_on_cpu_falls_back_to_float32(checkpoints):
    folder = str(checkpoints["hubert_layer"])
    ext = HfSsl(model=folder, dtype="float16", device="cpu")
    with pytest.warns(UserWarning, match="dtype float16 needs a GPU"):
        out = ext.extract(_wav(2000))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, HfSsl(model=folder).extract(_wav(2000)), atol=1e-6)
    with pytest.raises(ModelError, match="device 'gpu0' is not a torch device"):
        HfSsl(model=folder, device="gpu0").load_model()


def test_pickle_drops_the_model(checkpoints):
    ext = HfSsl(model=str(checkpoints["wav2vec2_group"]))
    out = ext.extract(_wav(1000))
    clone = pickle.loads(pickle.dumps(ext))
    assert clone._model is None
    np.testing.assert_allclose(clone.extract(_wav(1000)), out, atol=1e-6)


# -- fingerprint --------------------------------------------------------------------------
def test_fingerprint_follows_the_checkpoint_files(tmp_path, checkpoints):
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoints["wav2vec2_group"], folder)
    first = HfSsl(model=str(folder)).fingerprint()
    assert HfSsl(model=str(folder)).fingerprint() == first  # stable
    assert HfSsl(model=str(folder), layer=0).fingerprint() != first  # params
    assert [p.name for p in HfSsl(model=str(folder)).checkpoint_files()] == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    (folder / "README.md").write_text("notes")
    assert HfSsl(model=str(folder)).fingerprint() == first  # unrelated files do not matter
    _save(folder, "wav2vec2_group", seed=1)  # same config, other weights
    second = HfSsl(model=str(folder)).fingerprint()
    assert second != first
    _save(folder, "wav2vec2_group", seed=1, normalize=True)  # preprocessing changed
    assert HfSsl(model=str(folder)).fingerprint() not in (first, second)
    # a hub id is identified by its params only (no download needed)
    hub = HfSsl(model="facebook/wav2vec2-base")
    assert hub.checkpoint_files() == [] and hub.fingerprint() == super(HfSsl, hub).fingerprint()


# -- through the extraction driver --------------------------------------------------------
def test_through_the_driver(tmp_path, make_wav, checkpoints):
    ext = HfSsl(model=str(checkpoints["wav2vec2_layer"]), layer="weighted")
    paths = [make_wav(f"w{i}.wav", seconds=0.3 + 0.1 * i, seed=i) for i in range(3)]
    utts = [Utterance(f"u{i}", str(p), "happy", "s") for i, p in enumerate(paths)]
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(utts, ext, store, batch_size=2, num_workers=0, progress=False)
    assert res.computed == 3 and store.dim == 96
    from serkit.data.audio import load_audio

    for u in utts:
        wav = load_audio(u.path, 16000)
        np.testing.assert_allclose(store.get(res.keys[u.id]), ext.extract(wav), atol=1e-4)


def test_corrupt_weights(tmp_path, checkpoints):
    folder = tmp_path / "corrupt"
    shutil.copytree(checkpoints["hubert_layer"], folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    ext = HfSsl(model=str(folder))
    assert ext.dim == 32  # the config is fine
    with pytest.raises(ModelError, match=r"cannot load the weights"):
        ext.load_model()


def test_chunks_shorter_than_the_receptive_field_are_refused(tmp_path):
    folder = _save(tmp_path / "slow", "hubert_layer", weights=False)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=400).save_pretrained(folder)
    with pytest.raises(ModelError, match=r"max_chunk_seconds=0.1 gives 40 samples per chunk at 400 Hz, fewer than"):
        _ = HfSsl(model=str(folder), max_chunk_seconds=0.1).dim
    assert HfSsl(model=str(folder), max_chunk_seconds=1.0).max_chunk_samples == 400


# -- only the needed layers run -----------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_layers_above_the_highest_selected_state_are_dropped(tmp_path, kind):
    """A 4-layer model: each selection keeps the fewest layers that give its states exactly."""
    cfg_cls, model_cls, extra, _, _ = KINDS[kind]
    config = getattr(transformers, cfg_cls)(**{**TINY, **extra, "num_hidden_layers": 4})
    torch.manual_seed(0)
    getattr(transformers, model_cls)(config).save_pretrained(tmp_path)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=False).save_pretrained(tmp_path)
    wav = _wav(6000, seed=5)
    full = getattr(transformers, model_cls).from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        ref = [h[0].numpy() for h in full(torch.from_numpy(wav)[None], output_hidden_states=True).hidden_states]
    stable = bool(getattr(config, "do_stable_layer_norm", False))  # the last state gets a final norm
    for layer in range(5):
        ext = HfSsl(model=str(tmp_path), layer=layer)
        kept = len(ext.load_model().encoder.layers)
        assert kept == (4 if layer == 4 else max(1, layer + stable)), (layer, kept)
        np.testing.assert_allclose(ext.extract(wav), ref[layer], atol=1e-5)
    assert len(HfSsl(model=str(tmp_path), layer=[0, 2]).load_model().encoder.layers) == 2 + stable


# -- pooled storage -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["wav2vec2_group", "wavlm_layer"])
def test_pooled_equals_pooling_the_frames(checkpoints, kind):
    folder = str(checkpoints[kind])
    wavs = [_wav(n, seed=i) for i, n in enumerate((3000, 5000, 1900))]
    frames = HfSsl(model=folder, layer="weighted", max_chunk_seconds=0.1).extract_batch(wavs)  # chunked too
    mean = HfSsl(model=folder, layer="weighted", pool="mean", max_chunk_seconds=0.1)
    both = HfSsl(model=folder, layer="weighted", pool="mean_std", max_chunk_seconds=0.1)
    assert (mean.output, mean.dim, both.dim, both.n_layers, both.layer_width) == ("vector", 96, 192, 3, 64)
    for f, m, s in zip(frames, mean.extract_batch(wavs), both.extract_batch(wavs), strict=True):
        split = f.astype(np.float64).reshape(len(f), 3, 32)
        assert m.shape == (96,) and s.shape == (192,)
        np.testing.assert_allclose(mean.split_layers(m), split.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(both.split_layers(s)[:, :32], split.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(both.split_layers(s)[:, 32:], split.std(axis=0), atol=1e-5)
    single = HfSsl(model=folder, layer=[1, 2], pool="mean_std")
    assert (single.n_layers, single.dim) == (1, 64)
    avg = HfSsl(model=folder, layer=[1, 2]).extract(wavs[0]).astype(np.float64)
    np.testing.assert_allclose(single.extract(wavs[0]), np.r_[avg.mean(0), avg.std(0)], atol=1e-5)


def test_pooled_store_equals_pooling_the_frame_level_store(tmp_path, make_wav, checkpoints):
    """Through the driver into float16 stores: pooled storage == pooling the stored frames (float16 tolerance)."""
    from serkit.builtin.extractors.whisper import Whisper
    from serkit.testing.tiny_hf import save_tiny_whisper

    whisper_folder = save_tiny_whisper(tmp_path / "whisper")
    paths = [make_wav(f"w{i}.wav", seconds=0.4 + 0.9 * i, seed=i) for i in range(4)]  # up to 3.1 s: chunked
    utts = [Utterance(f"u{i}", str(p), "happy", "s") for i, p in enumerate(paths)]
    for model, cls in ((str(checkpoints["wav2vec2_group"]), HfSsl), (str(whisper_folder), Whisper)):
        frames_ext = cls(model=model, layer="weighted", max_chunk_seconds=1.0)
        frames_store = FeatureStore(tmp_path / "frames", frames_ext, dtype="float16")
        frames_keys = extract_features(utts, frames_ext, frames_store, batch_size=3, progress=False).keys
        for pool in ("mean", "mean_std"):
            pooled_ext = cls(model=model, layer="weighted", max_chunk_seconds=1.0, pool=pool)
            assert pooled_ext.fingerprint() != frames_ext.fingerprint()
            store = FeatureStore(tmp_path / "pooled", pooled_ext, dtype="float16")
            keys = extract_features(utts, pooled_ext, store, batch_size=3, progress=False).keys
            assert store.dim == pooled_ext.dim
            for u in utts:
                x = frames_ext.split_layers(frames_store.get(frames_keys[u.id]).astype(np.float64))  # (L, n, H)
                stats = [x.mean(axis=0)] + ([x.std(axis=0)] if pool == "mean_std" else [])
                expected = np.concatenate(stats, axis=-1)
                got = pooled_ext.split_layers(store.get(keys[u.id]))
                np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)


def test_fingerprint_of_frame_level_storage_is_unchanged_by_pool(checkpoints):
    """``pool: none`` keeps the key stores had before ``pool`` existed; other pools get their own."""
    import hashlib
    import json

    ext = HfSsl(model="facebook/wav2vec2-base", layer="weighted")
    params = ext.params.model_dump(mode="json", exclude={"type", "device", "local_files_only", "pool", "max_padding"})
    legacy = json.dumps({"name": "hf_ssl", "version": "1", "params": params}, sort_keys=True)
    assert ext.fingerprint() == hashlib.sha256(legacy.encode()).hexdigest()[:16]
    hub = "facebook/wav2vec2-base"
    pooled = {HfSsl(model=hub, layer="weighted", pool=p).fingerprint() for p in ("mean", "mean_std")}
    assert len(pooled) == 2 and ext.fingerprint() not in pooled


@pytest.mark.parametrize("pool", ["none", "mean_std"])
def test_extractor_contract(checkpoints, pool):
    from serkit.testing.extractor_contract import check_extractor

    ext = HfSsl(model=str(checkpoints["wav2vec2_group"]), layer="weighted", pool=pool)
    assert check_extractor(ext, changed_params={"layer": 0}, atol=1e-4) == []
    assert check_extractor(ext, changed_params={"pool": "mean"}, atol=1e-4) == []
