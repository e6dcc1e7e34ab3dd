"""The ``allosaurus`` extractor on a tiny model folder built with allosaurus' own classes.

No real Allosaurus model can be downloaded here, so the fixture writes a complete model
folder (configs, phone list, language inventory) whose ``model.pt`` is a randomly
initialised ``allosaurus.am.allosaurus_torch.AllosaurusTorchModel`` saved with allosaurus'
``torch_save``; the extractor loads it through allosaurus' ``read_pm``/``read_am``/``read_lm``.
"""

from __future__ import annotations

import json
import pickle
from argparse import Namespace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from serkit.errors import AudioError, ModelError
from serkit.testing.extractor_contract import ExtractorContract

from serkit_plugin_allosaurus.extractor import MODEL_FILES, Allosaurus, default_model_dir

pytest.importorskip("allosaurus", reason="the allosaurus package is not installed (pip install allosaurus)")
torch = pytest.importorskip("torch", reason="torch is not installed")

SR = 8000
PHONES = ["a", "i", "u", "p", "t", "k", "s"]  # universal inventory: <blk> + 7 = 8 units
LANG_PHONES = ["k", "a", "t"]  # the language file lists a subset, in its own order
HIDDEN = 8
AM_CONFIG = {
    "model": "allosaurus",
    "hidden_size": HIDDEN,
    "layer_size": 2,
    "proj_size": 0,
    "feat_size": 120,  # 40 cepstra stacked over 3 frames
    "lang_size_dict": {},
    "phone_size": len(PHONES) + 1,
}
PM_CONFIG = {
    "model": "mfcc_hires",
    "backend": "numpy",
    "sample_rate": SR,
    "cmvn": "speaker",
    "window_size": 0.025,
    "window_shift": 0.01,
    "feature_window": 3,
    "cep_size": 40,
    "bank_size": 40,
    "low_freq": 20,
    "high_freq": -200,
    "use_energy": False,
    "dither": 0.0,
    "dtype": "float32",
}


def write_model(folder: Path, seed: int = 0) -> Path:
    """A complete allosaurus model folder with random weights."""
    from allosaurus.am.allosaurus_torch import AllosaurusTorchModel
    from allosaurus.am.utils import torch_save

    (folder / "inventory").mkdir(parents=True)
    (folder / "am_config.json").write_text(json.dumps(AM_CONFIG))
    (folder / "pm_config.json").write_text(json.dumps(PM_CONFIG))
    (folder / "lm_config.json").write_text(json.dumps({"model": "phone_ipa", "backend": "numpy"}))
    (folder / "phone.txt").write_text("".join(f"{p}\n" for p in PHONES), encoding="utf-8")
    index = [{"LanguageName": "Testish", "ISO6393": "tst", "GlottoCode": "test1234", "phonelists": "tst.txt"}]
    (folder / "inventory" / "index.json").write_text(json.dumps(index))
    (folder / "inventory" / "tst.txt").write_text("".join(f"{p}\n" for p in LANG_PHONES), encoding="utf-8")
    torch.manual_seed(seed)
    torch_save(AllosaurusTorchModel(Namespace(**AM_CONFIG)), folder / "model.pt")
    return folder


def tone(seconds: float, f0: float, seed: int = 0) -> np.ndarray:
    """Harmonic tone plus noise at 8 kHz, float32 on the 16-bit grid (as read from a PCM WAV)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    y = 0.2 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 4)) + 0.01 * rng.standard_normal(t.size)
    return (np.round(y * 32768) / 32768).astype(np.float32)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model(tmp_path / "tiny2024")


class TestAllosaurusContract(ExtractorContract):
    """serkit's extractor contract on the tiny random model: phone posteriors and hidden states."""

    changed_params: ClassVar[dict[str, str]] = {"lang": "tst"}

    @pytest.fixture(params=["posteriors", "hidden"])
    def extractor(self, request: pytest.FixtureRequest, model_dir: Path) -> Allosaurus:
        return Allosaurus(model_dir=str(model_dir), output=request.param)


# -- the model is absent ---------------------------------------------------------------------
def test_missing_model_dir_gives_the_download_command(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "uni2005"
    ext = Allosaurus(model_dir=str(folder))
    with pytest.raises(ModelError) as info:
        ext.load_recognizer()
    default = default_model_dir("uni2005")
    assert str(info.value) == (
        f"extractor 'allosaurus': model folder {folder} does not exist (field 'model_dir'). The allosaurus wheel "
        "ships no model and serkit never downloads one. On a machine with internet access run: "
        f"python -m allosaurus.bin.download_model -m uni2005 (it unpacks into {default}), or fetch "
        "https://github.com/xinjli/allosaurus/releases/download/v1.0/uni2005.tar.gz and unpack it so that "
        "model_dir holds am_config.json, pm_config.json, lm_config.json, model.pt, phone.txt, inventory/index.json"
    )
    # the declared shape needs the model's configs: the same error, before any audio is read
    for attr in ("sample_rate", "dim"):
        with pytest.raises(ModelError, match=r"does not exist \(field 'model_dir'\)\. The allosaurus wheel"):
            getattr(ext, attr)


def test_default_location_is_allosaurus_pretrained_folder() -> None:
    import allosaurus

    ext = Allosaurus(model="eng2102")
    expected = Path(allosaurus.__file__).parent / "pretrained" / "eng2102"
    assert ext.model_path == expected == default_model_dir("eng2102")
    if not expected.exists():
        with pytest.raises(ModelError) as info:
            ext.check_model_dir()
        assert f"model folder {expected} does not exist (field 'model')" in str(info.value)
        assert "run: python -m allosaurus.bin.download_model -m eng2102 (it unpacks into" in str(info.value)


def test_incomplete_folder_and_folder_of_models(tmp_path: Path, model_dir: Path) -> None:
    (model_dir / "model.pt").unlink()
    (model_dir / "phone.txt").unlink()
    lacks = r"model folder .*tiny2024 \(field 'model_dir'\) lacks model\.pt, phone\.txt\. "
    with pytest.raises(ModelError, match=lacks):
        Allosaurus(model_dir=str(model_dir)).check_model_dir()
    write_model(tmp_path / "pretrained" / "uni2005")
    with pytest.raises(ModelError) as info:
        Allosaurus(model_dir=str(tmp_path / "pretrained")).check_model_dir()
    assert (
        "it holds the model folder(s) uni2005: set model_dir to " + str(tmp_path / "pretrained" / "uni2005")
    ) in str(info.value)


def test_the_model_files_list_is_what_the_readers_open(model_dir: Path) -> None:
    assert sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()) == sorted(
        [*MODEL_FILES, "inventory/tst.txt"]
    )


# -- a real (tiny) model ---------------------------------------------------------------------
def test_posteriors_equal_allosaurus_own_pipeline_on_a_wav_file(tmp_path: Path, model_dir: Path) -> None:
    import soundfile as sf
    from allosaurus.am.utils import move_to_tensor
    from allosaurus.audio import read_audio

    wav = tone(1.2, 150.0)
    path = tmp_path / "x.wav"
    sf.write(path, wav, SR, subtype="PCM_16")
    ext = Allosaurus(model_dir=str(model_dir))
    assert (ext.output, ext.sample_rate, ext.dim) == ("sequence", SR, len(PHONES) + 1)
    post = ext.extract(wav)
    # allosaurus' Recognizer.recognize path, step by step: WAV -> pm -> am logits
    rec = ext.load_recognizer()
    feat = rec.pm.compute(read_audio(str(path)))
    x, n = move_to_tensor([feat[None], np.array([feat.shape[0]], dtype=np.int32)])
    with torch.no_grad():
        logits = rec.am(x, n)[0].numpy()
    ref = np.exp(logits - logits.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    assert post.shape == ref.shape == (ext.num_frames(len(wav)), 8) and post.dtype == np.float32
    np.testing.assert_allclose(post, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-5)
    # the Recognizer is complete: allosaurus can transcribe with it
    assert isinstance(rec.recognize(str(path)), str)


def test_frame_count_is_one_per_30_ms(model_dir: Path) -> None:
    ext = Allosaurus(model_dir=str(model_dir), output="hidden")
    assert ext.frame_geometry() == (200, 80, 3) and ext.dim == 2 * HIDDEN
    assert ext.min_samples == 280  # two MFCC frames: one frame has no variance for the CMVN
    for n in (280, 359, 360, 440, 8000, 8123):  # 2, 2, 3, 4, 98 and 99 MFCC frames
        mfcc_frames = 1 + (n - 200) // 80
        expected = -(-mfcc_frames // 3)
        assert ext.num_frames(n) == expected
        assert ext.extract(tone(n / SR, 150.0, seed=1)).shape == (expected, 2 * HIDDEN)
    assert ext.num_frames(8000) == 33  # 1 s: 98 MFCC frames of 10 ms, stacked by 3


def test_hidden_states_are_the_last_blstm_layer(model_dir: Path) -> None:
    ext = Allosaurus(model_dir=str(model_dir), output="hidden")
    wav = tone(0.7, 210.0)
    hidden = ext.extract(wav)
    am = ext.load_recognizer().am
    x = torch.from_numpy(ext.mfcc(wav))[:, None, :]  # (T, 1, 120)
    with torch.no_grad():
        ref, _ = am.blstm_layer(x)
    np.testing.assert_allclose(hidden, ref[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    # the posteriors are the softmax of the phone layer on these states
    post = Allosaurus(model_dir=str(model_dir)).extract(wav)
    with torch.no_grad():
        expected = torch.softmax(am.phone_layer(torch.from_numpy(hidden)), dim=-1).numpy()
    np.testing.assert_allclose(post, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("output", ["posteriors", "hidden"])
def test_batch_equals_one_by_one(model_dir: Path, output: str) -> None:
    ext = Allosaurus(model_dir=str(model_dir), output=output)
    wavs = [tone(s, f, seed=i) for i, (s, f) in enumerate([(0.3, 140.0), (1.1, 220.0), (0.6, 180.0), (1.1, 120.0)])]
    batch = ext.extract_batch(wavs)
    for b, w in zip(batch, wavs, strict=True):
        alone = ext.extract(w)
        assert b.shape == alone.shape == (ext.num_frames(len(w)), ext.dim)
        np.testing.assert_allclose(b, alone, rtol=1e-5, atol=1e-6)
    assert ext.extract_batch([]) == []


def test_language_posteriors_are_the_renormalised_subset(model_dir: Path) -> None:
    wav = tone(0.8, 160.0)
    full = Allosaurus(model_dir=str(model_dir))
    lang = Allosaurus(model_dir=str(model_dir), lang="tst")
    assert full.units == ["<blk>", *PHONES]
    assert lang.units == ["<blk>", "k", "a", "t"] and lang.dim == 4
    p_full, p_lang = full.extract(wav), lang.extract(wav)
    cols = [0, PHONES.index("k") + 1, PHONES.index("a") + 1, PHONES.index("t") + 1]
    expected = p_full[:, cols] / p_full[:, cols].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p_lang, expected, rtol=1e-4, atol=1e-6)
    assert Allosaurus(model_dir=str(model_dir), lang="test1234").units == lang.units  # Glottocode
    with pytest.raises(ModelError) as info:
        _ = Allosaurus(model_dir=str(model_dir), lang="xyz").dim
    assert str(info.value) == (
        f"extractor 'allosaurus': model {model_dir} has no inventory for lang 'xyz' (field 'lang'; ISO 639-3 "
        "codes or Glottocodes, or 'ipa' for all phones); languages: tst"
    )
    with pytest.raises(ModelError, match="units are the columns of output: posteriors"):
        _ = Allosaurus(model_dir=str(model_dir), output="hidden").units


def test_bad_waveforms_are_audio_errors(model_dir: Path) -> None:
    ext = Allosaurus(model_dir=str(model_dir))
    with pytest.raises(AudioError) as info:
        ext.extract(tone(0.02, 200.0))
    assert str(info.value) == (
        "allosaurus: the waveform has 160 samples; the model needs at least 280 (35 ms at 8000 Hz)"
    )
    with pytest.raises(AudioError, match=r"allosaurus expects a 1-D waveform, got shape \(2, 800\)"):
        ext.extract(np.zeros((2, 800), np.float32))
    bad = tone(0.3, 150.0)
    bad[3] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite samples"):
        ext.extract(bad)
    with pytest.raises(AudioError, match="MFCCs of this waveform are not finite"):
        ext.extract(np.zeros(800, np.float32))


def test_fingerprint_follows_the_model_files(tmp_path: Path, model_dir: Path) -> None:
    a = Allosaurus(model_dir=str(model_dir)).fingerprint()
    assert a == Allosaurus(model_dir=str(model_dir), device="cuda:1").fingerprint()
    assert a != Allosaurus(model_dir=str(model_dir), output="hidden").fingerprint()
    other = write_model(tmp_path / "other" / "tiny2024", seed=1)
    assert Allosaurus(model_dir=str(other)).fingerprint() != a


def test_pickling_drops_the_recognizer(model_dir: Path) -> None:
    ext = Allosaurus(model_dir=str(model_dir))
    wav = tone(0.4, 170.0)
    first = ext.extract(wav)
    clone = pickle.loads(pickle.dumps(ext))
    assert clone._recognizer is None
    np.testing.assert_array_equal(clone.extract(wav), first)


def test_feature_driver_resamples_and_stores(tmp_path: Path, model_dir: Path) -> None:
    import soundfile as sf
    from serkit.data.utterance import Utterance
    from serkit.features import FeatureStore, extract_features

    utts = []
    for i, seconds in enumerate((0.5, 0.9)):
        path = tmp_path / f"u{i}.wav"
        t = np.arange(round(seconds * 16000)) / 16000
        sf.write(path, (0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t)).astype(np.float32), 16000, subtype="PCM_16")
        utts.append(Utterance(id=f"u{i}", path=str(path), label="neutral", speaker="s"))
    ext = Allosaurus(model_dir=str(model_dir))
    store = FeatureStore(tmp_path / "store", ext)
    res = extract_features(utts, ext, store, batch_size=2, num_workers=0, progress=False)
    assert (res.computed, res.failed) == (2, [])
    shapes = [store.get(res.keys[u.id]).shape for u in utts]
    assert shapes == [(ext.num_frames(4000), 8), (ext.num_frames(7200), 8)]  # audio resampled to 8 kHz
