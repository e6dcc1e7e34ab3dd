"""The ``byol`` extractor: front end, AudioNTT2020 encoder, checkpoints, batching, fine-tuning."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from pydantic import ValidationError
from serkit.errors import AudioError, ModelError
from serkit.testing.extractor_contract import ExtractorContract

from serkit_plugin_byol.extractor import Byol

torch = pytest.importorskip("torch", reason="torch is not installed")

SR = 16000
RANDOM = {"checkpoint": None}


def tone(seconds: float, f0: float, seed: int = 0) -> np.ndarray:
    """Harmonic tone with a slow amplitude modulation and a little noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.1 * y + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def random_byol(**kwargs) -> Byol:
    ext = Byol(**{**RANDOM, **kwargs})
    with pytest.warns(UserWarning, match="random weights"):
        ext.load_encoder()
    return ext


class TestByolContract(ExtractorContract):
    """serkit's extractor contract, on random weights: embeddings (vectors) and frame embeddings (sequences)."""

    changed_params: ClassVar[dict[str, int]] = {"seed": 1}

    @pytest.fixture(params=["vector", "sequence"])
    def extractor(self, request: pytest.FixtureRequest) -> Byol:
        return random_byol(d=512, output=request.param)


def test_log_mel_front_end_equals_librosa() -> None:
    import librosa

    wav = tone(0.5, 180.0)
    lms = Byol(**RANDOM).log_mel(wav)
    ref = librosa.feature.melspectrogram(
        y=wav,
        sr=SR,
        n_fft=1024,
        hop_length=160,
        win_length=1024,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=64,
        fmin=60,
        fmax=7800,
        htk=True,
        norm=None,
    )
    assert lms.shape == (1 + len(wav) // 160, 64) and lms.dtype == np.float32
    np.testing.assert_allclose(lms, np.log(ref.T + np.finfo(np.float32).eps), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("d", [512, 1024, 2048])
def test_shapes_per_d(d: int) -> None:
    wav = tone(1.0, 200.0)
    vec = random_byol(d=d)
    seq = random_byol(d=d, output="sequence")
    v, s = vec.extract(wav), seq.extract(wav)
    assert (vec.output, vec.dim, seq.output, seq.dim) == ("vector", d, "sequence", d)
    assert v.shape == (d,) and v.dtype == np.float32
    assert s.shape == (Byol.num_frames(SR), d) == ((1 + SR // 160) // 8, d) == (12, d)
    # BYOL-A's embedding: max over time + mean over time of the frame embeddings
    np.testing.assert_allclose(v, s.max(axis=0) + s.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert (s >= 0).all()  # the last layer is a ReLU
    assert sum(p.numel() for p in vec.load_encoder().parameters()) == (
        (9 * 64 + 64) + (9 * 64 * 64 + 64) * 2 + 3 * 2 * 64 + (512 * d + d) + (d * d + d)
    )


def test_encoder_equals_the_plain_byol_a_forward() -> None:
    """The masked encoder gives, for one utterance, BYOL-A's unmasked computation exactly."""
    ext = random_byol(d=512)
    enc = ext.load_encoder()
    lms = ext.normalise(ext.log_mel(tone(0.9, 150.0)))
    x = torch.from_numpy(lms)[None]
    with torch.inference_mode():
        h = enc.features(x.transpose(1, 2).unsqueeze(1))  # (1, 64, 8, T/8)
        h = h.permute(0, 3, 2, 1).reshape(1, h.shape[-1], -1)
        frames = enc.fc(h)
        ref = frames.max(dim=1).values + frames.mean(dim=1)
    np.testing.assert_array_equal(ext.extract(tone(0.9, 150.0)), ref[0].numpy())


def test_utterance_normalisation_is_zero_mean_unit_std_and_dataset_uses_given_stats() -> None:
    wav = tone(0.7, 220.0)
    ext = Byol(**RANDOM)
    z = ext.normalise(ext.log_mel(wav))
    assert abs(float(z.mean())) < 1e-4 and float(z.std()) == pytest.approx(1.0, abs=1e-4)
    mean, std = ext.log_mel_stats([wav, tone(0.4, 120.0, seed=1)])
    both = np.concatenate([ext.log_mel(wav).ravel(), ext.log_mel(tone(0.4, 120.0, seed=1)).ravel()]).astype(np.float64)
    assert (mean, std) == pytest.approx((both.mean(), both.std()), rel=1e-6)
    ds = Byol(checkpoint=None, norm="dataset", norm_mean=-3.0, norm_std=2.0)
    np.testing.assert_allclose(ds.normalise(ext.log_mel(wav)), (ext.log_mel(wav) + 3.0) / 2.0, rtol=1e-6)
    with pytest.raises(ValidationError, match="norm: dataset needs norm_mean and norm_std"):
        Byol(checkpoint=None, norm="dataset", norm_mean=1.0)
    with pytest.raises(ValidationError, match="norm_mean and norm_std are only used with norm: dataset"):
        Byol(checkpoint=None, norm_std=1.0)


@pytest.mark.parametrize("output", ["vector", "sequence"])
def test_batch_equals_one_by_one(output: str) -> None:
    ext = random_byol(d=512, output=output)
    wavs = [tone(s, f, seed=i) for i, (s, f) in enumerate([(0.45, 140.0), (1.3, 210.0), (0.07, 300.0), (0.8, 180.0)])]
    batch = ext.extract_batch(wavs)
    for b, w in zip(batch, wavs, strict=True):
        alone = ext.extract(w)
        assert b.shape == alone.shape
        if output == "sequence":
            assert b.shape == (Byol.num_frames(len(w)), 512)
        np.testing.assert_allclose(b, alone, rtol=1e-5, atol=1e-5)
    assert ext.extract_batch([]) == []


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_saved_random_state_dict_reproduces_the_features_exactly(tmp_path: Path, suffix: str) -> None:
    source = random_byol(d=1024, seed=7)
    state = source.load_encoder().state_dict()
    path = tmp_path / f"byol{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    loaded = Byol(checkpoint=str(path), d=1024)
    wavs = [tone(0.6, 170.0), tone(1.1, 240.0, seed=3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a real checkpoint gives no random-weights warning
        got = loaded.extract_batch(wavs)
    for g, ref in zip(got, source.extract_batch(wavs), strict=True):
        np.testing.assert_array_equal(g, ref)
    np.testing.assert_array_equal(loaded.extract(wavs[0]), source.extract(wavs[0]))
    # another seed gives other weights, so other features
    assert not np.allclose(random_byol(d=1024, seed=8).extract(wavs[0]), got[0])


def test_training_checkpoints_module_prefix_wrapper_and_key_prefix(tmp_path: Path) -> None:
    source = random_byol(d=512, seed=1)
    state = source.load_encoder().state_dict()
    wav = tone(0.5, 190.0)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    np.testing.assert_array_equal(Byol(checkpoint=str(wrapped), d=512).extract(wav), source.extract(wav))
    training = tmp_path / "training.pth"
    head = {"projector.0.weight": torch.zeros(4, 4)}
    torch.save({**{f"online.encoder.{k}": v for k, v in state.items()}, **head}, training)
    got = Byol(checkpoint=str(training), d=512, key_prefix="online.encoder.").extract(wav)
    np.testing.assert_array_equal(got, source.extract(wav))
    with pytest.raises(ModelError) as info:
        Byol(checkpoint=str(training), d=512).load_encoder()
    assert str(info.value) == (
        f"extractor 'byol': checkpoint {training} does not fit AudioNTT2020 (n_mels 64, d 512): "
        "missing keys: features.0.weight, features.0.bias, features.1.weight, features.1.bias, "
        "features.1.running_mean, ... (25 in all); unexpected keys: online.encoder.features.0.weight, "
        "online.encoder.features.0.bias, online.encoder.features.1.weight, online.encoder.features.1.bias, "
        "online.encoder.features.1.running_mean, ... (26 in all) (field 'key_prefix' selects a sub-network "
        "of a training checkpoint)"
    )
    no_key = r"no key starts with key_prefix 'target\.' \(field 'key_prefix'\); keys: online\.encoder"
    with pytest.raises(ModelError, match=no_key):
        Byol(checkpoint=str(training), d=512, key_prefix="target.").load_encoder()


def test_key_and_shape_mismatch_errors(tmp_path: Path) -> None:
    state = random_byol(d=512).load_encoder().state_dict()
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.3")}, partial)
    with pytest.raises(ModelError) as info:
        Byol(checkpoint=str(partial), d=512).load_encoder()
    assert str(info.value).endswith(
        ": missing keys: fc.3.weight, fc.3.bias (field 'key_prefix' selects a sub-network of a training checkpoint)"
    )
    small = tmp_path / "d512.pth"
    torch.save(state, small)
    with pytest.raises(ModelError) as info:
        Byol(checkpoint=str(small), d=2048).load_encoder()
    assert str(info.value) == (
        f"extractor 'byol': checkpoint {small} does not fit AudioNTT2020 (n_mels 64, d 2048): shapes differ: "
        "fc.0.weight (512, 512) (expected (2048, 512)), fc.0.bias (512,) (expected (2048,)), "
        "fc.3.weight (512, 512) (expected (2048, 2048)), fc.3.bias (512,) (expected (2048,)); "
        "the checkpoint is for d 512, n_mels 64: set fields 'd' and 'n_mels'"
    )


def test_missing_unreadable_and_non_state_dict_checkpoints(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(ModelError) as info:
        Byol(checkpoint=str(missing)).load_encoder()
    assert str(info.value) == (
        f"extractor 'byol': checkpoint {missing} does not exist (field 'checkpoint'); download a BYOL-A/BYOL-S "
        "AudioNTT2020 checkpoint (e.g. AudioNTT2020-BYOLA-64x96d2048.pth from https://github.com/nttcslab/byol-a) "
        "or set checkpoint: null for random weights (tests only)"
    )
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match=r"checkpoint .*junk\.pth cannot be read \("):
        Byol(checkpoint=str(junk)).load_encoder()
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(ModelError, match=r"list\.pth does not hold a state dict of tensors \(got list\)"):
        Byol(checkpoint=str(listed)).load_encoder()
    with pytest.raises(ValidationError, match="checkpoint"):
        Byol()  # required: a path, or null on purpose


def test_short_and_bad_waveforms() -> None:
    ext = Byol(**RANDOM)
    with pytest.raises(AudioError) as info:
        ext.extract(np.zeros(1000, np.float32))
    assert str(info.value) == "byol: the waveform has 1000 samples; the encoder needs at least 1120 (70 ms at 16000 Hz)"
    with pytest.raises(AudioError, match=r"byol expects a 1-D waveform, got shape \(2, 2000\)"):
        ext.extract(np.zeros((2, 2000), np.float32))
    bad = tone(0.2, 100.0)
    bad[5] = np.inf
    with pytest.raises(AudioError, match="NaN or infinite"):
        ext.extract(bad)
    with pytest.warns(UserWarning, match="random weights"):
        assert ext.extract(np.zeros(1120, np.float32)).shape == (2048,)  # digital silence is fine


def test_fingerprint_follows_the_checkpoint_contents_not_the_device(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save(random_byol(d=512, seed=1).load_encoder().state_dict(), path)
    a = Byol(checkpoint=str(path), d=512).fingerprint()
    assert a == Byol(checkpoint=str(path), d=512, device="cuda:0").fingerprint()
    torch.save(random_byol(d=512, seed=2).load_encoder().state_dict(), path)
    assert Byol(checkpoint=str(path), d=512).fingerprint() != a
    assert Byol(checkpoint=None).fingerprint() != Byol(checkpoint=None, seed=1).fingerprint()


def test_pickling_drops_the_networks() -> None:
    ext = random_byol(d=512)
    wav = tone(0.3, 200.0)
    first = ext.extract(wav)
    clone = pickle.loads(pickle.dumps(ext))
    assert clone._encoder is None and clone._frontend is None
    with pytest.warns(UserWarning, match="random weights"):
        np.testing.assert_array_equal(clone.extract(wav), first)


def test_finetune_caches_log_mels_and_the_network_reproduces_the_frozen_embedding() -> None:
    from serkit_plugin_byol.network import ByolEncoderNet

    frozen = random_byol(d=512, seed=4)
    tuned = random_byol(d=512, seed=4, finetune=True, lr_scale=0.1)
    assert (tuned.output, tuned.dim, tuned.trainable, tuned.lr_scale) == ("sequence", 64, True, 0.1)
    wavs = [tone(0.9, 160.0), tone(0.5, 230.0, seed=2)]
    mels = tuned.extract_batch(wavs)
    assert [m.shape for m in mels] == [(91, 64), (51, 64)]
    net = tuned.build_trainable()
    assert isinstance(net, ByolEncoderNet) and net.out_dim == 512
    x = torch.zeros(2, 91, 64)
    x[0], x[1, :51] = torch.from_numpy(mels[0]), torch.from_numpy(mels[1])
    x[1, 51:] = float("nan")  # padding must not matter
    lengths = torch.tensor([91, 51])
    net.eval()
    with torch.no_grad():
        emb = net(x, lengths)
    np.testing.assert_allclose(emb.numpy(), np.stack([frozen.extract(w) for w in wavs]), rtol=1e-5, atol=1e-5)
    # training: batch norm keeps its running statistics, gradients reach the first conv
    net.train()
    bn = net.encoder.features[1]
    before = bn.running_mean.clone()
    assert not bn.training and net.encoder.fc[2].training
    net(x, lengths).sum().backward()
    assert torch.equal(bn.running_mean, before)
    assert net.encoder.features[0].weight.grad is not None and net.encoder.features[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValidationError, match="finetune: true needs output: vector"):
        Byol(checkpoint=None, finetune=True, output="sequence")


def test_feature_driver_stores_sequences(tmp_path: Path) -> None:
    import soundfile as sf
    from serkit.data.utterance import Utterance
    from serkit.features import FeatureStore, extract_features

    utts = []
    for i, seconds in enumerate((0.5, 0.9, 0.3)):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, tone(seconds, 150.0 + 30 * i, seed=i), SR, subtype="PCM_16")
        utts.append(Utterance(id=f"u{i}", path=str(path), label="neutral", speaker="s"))
    ext = random_byol(d=512, output="sequence")
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(utts, ext, store, batch_size=3, num_workers=0, progress=False)
    assert (res.computed, res.failed) == (3, [])
    assert [store.get(res.keys[u.id]).shape for u in utts] == [(6, 512), (11, 512), (3, 512)]
