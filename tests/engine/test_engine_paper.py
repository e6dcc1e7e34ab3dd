"""Engine features used by the paper's models: shared heads, fusion extras, fine-tuned GE2E,
speaker normalisation, balanced batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from serkit.config.loader import load_yaml_text
from serkit.config.recipe import validate_recipe_data
from serkit.testing.cli import run_cli

BASE = """\
name: {name}
seed: 0
protocol: {{type: speaker, k: 3, folds: [0]}}
domains:
  xa:
    dataset: {{type: synthetic, languages: [xa], speakers: 6, per_class: 6, emotions: [angry, happy, neutral, sad]}}
    {xa}
  xb:
    dataset: {{type: synthetic, languages: [xb], speakers: 6, per_class: 6, emotions: [angry, fear, sad]}}
    {xb}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 20, hop_ms: 20}}
    encoder: {{type: mean_pool, stats: true}}
  ge2e: {{extractor: {{type: ge2e}}}}
fusion: {fusion}
heads:
  default: {{type: mlp, hidden: [32], activations: [relu], dropout: 0.0}}
train: {{epochs: 3, batch_size: 16{train}}}
{extra}
"""


def write_recipe(
    tmp_path: Path,
    name: str,
    *,
    xa: str = "",
    xb: str = "",
    fusion: str = "{type: concat}",
    train: str = "",
    extra: str = "",
) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(BASE.format(name=name, xa=xa, xb=xb, fusion=fusion, train=train, extra=extra))
    return p


def test_shared_head_uses_the_union_of_labels(tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path, "base", xa="head: shared", xb="head: shared", extra="heads: {shared: {type: mlp, hidden: [32]}}"
    )
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    union = ["angry", "fear", "happy", "neutral", "sad"]
    for d, own in (("xa", ["angry", "happy", "neutral", "sad"]), ("xb", ["angry", "fear", "sad"])):
        assert res["domains"][d]["labels"] == union
        assert res["domains"][d]["own_labels"] == own
        assert res["domains"][d]["head"] == "shared"
        conf = np.array(res["domains"][d]["confusion"])
        assert conf.shape == (5, 5)
        # rows of labels the domain does not have are empty
        for i, lab in enumerate(union):
            if lab not in own:
                assert conf[i].sum() == 0
    from safetensors.torch import load_file

    weights = load_file(str(out / "checkpoints" / "r0-f0.safetensors"))
    heads = {k.split(".")[1] for k in weights if k.startswith("heads.")}
    assert heads == {"shared"}
    last = [k for k in weights if k.startswith("heads.shared.") and k.endswith("weight")]
    assert weights[sorted(last)[-1]].shape[0] == 5


def test_gated_nas_run_reports_gates_connectivity_and_uses_the_penalty(tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path,
        "nas",
        fusion="{type: gated_nas, selector: ge2e, width: 32, l0_weight: 0.01}",
        extra="loss: {aux: {type: ge2e_contrastive, weight: 0.1, min_per_class: 3}}",
        train=", sampler: balanced, samples_per_class: 4",
    )
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    for d in ("xa", "xb"):
        gates = res["domains"][d]["gates"]
        assert gates["streams"] == ["mfcc", "ge2e"]
        assert abs(sum(gates["mean"]) - 1.0) < 1e-4
        xi = np.array(res["domains"][d]["nas_connectivity"]["mean"])
        assert xi.shape == (2, 2) and ((xi >= 0) & (xi <= 1)).all()
    assert "xi" in res["runs"][0]["fusion"]
    assert "Gate weights" in (out / "report.md").read_text()


def test_finetuned_ge2e_starts_equal_to_the_frozen_extractor_and_trains_slowly(tmp_path: Path) -> None:
    from serkit.builtin.extractors.ge2e import Ge2e

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    wavs = [
        (
            0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(t.size)
        ).astype("float32")
        for f in (140.0, 220.0)
    ]
    frozen = Ge2e(trim_silence=False)
    tuned = Ge2e(trim_silence=False, finetune=True)
    assert (tuned.output, tuned.dim, tuned.trainable) == ("sequence", 6400, True)
    assert tuned.fingerprint() != frozen.fingerprint()
    vectors = frozen.extract_batch(wavs)
    windows = tuned.extract_batch(wavs)
    net = tuned.build_trainable()
    lengths = torch.tensor([w.shape[0] for w in windows])
    x = torch.zeros(2, int(lengths.max()), 6400)
    for i, w in enumerate(windows):
        x[i, : w.shape[0]] = torch.from_numpy(w)
    with torch.no_grad():
        out = net(x, lengths).numpy()
    np.testing.assert_allclose(out, np.stack(vectors), atol=1e-5)
    # the network is a copy: training it leaves the extractor's encoder untouched
    before = frozen.load_encoder().lstm.weight_hh_l0.detach().clone()
    net.lstm.weight_hh_l0.data.add_(1.0)
    assert torch.equal(tuned.load_encoder().lstm.weight_hh_l0, before)


def test_finetuned_stream_gets_its_own_learning_rate(tmp_path: Path) -> None:
    from serkit.builtin.extractors.ge2e import Ge2e
    from serkit.engine.data import StreamInfo
    from serkit.engine.fit import param_groups as _param_groups
    from serkit.engine.model import build_model
    from serkit.plugins import get_registry

    text = BASE.format(name="ft", xa="", xb="", fusion="{type: concat}", train="", extra="").replace(
        "ge2e: {extractor: {type: ge2e}}", "ge2e: {extractor: {type: ge2e, finetune: true, lr_scale: 0.01}}"
    )
    data, lines = load_yaml_text(text)
    recipe = validate_recipe_data(data, lines)
    reg = get_registry()
    ext = {
        "mfcc": reg.create("extractor", recipe.features["mfcc"].extractor),
        "ge2e": reg.create("extractor", recipe.features["ge2e"].extractor),
    }
    assert isinstance(ext["ge2e"], Ge2e)
    streams = [StreamInfo("mfcc", "sequence", 20), StreamInfo("ge2e", "sequence", 6400)]
    model = build_model(recipe, reg, streams, {"xa": ["a", "b"], "xb": ["a", "b"]}, None, ext)
    groups = _param_groups(model, ext, [])
    opt = reg.create("optimizer", recipe.optimizer).build(groups)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["extractor:ge2e"]["lr"] == pytest.approx(1e-5)
    assert by_name["model"]["lr"] == pytest.approx(1e-3)
    ge2e_ids = {id(p) for p in model.encoders["ge2e"].parameters()}
    assert ge2e_ids == {id(p) for p in by_name["extractor:ge2e"]["params"]}
    assert not ge2e_ids & {id(p) for p in by_name["model"]["params"]}


def test_recipe_rejects_an_encoder_on_a_finetuned_extractor() -> None:
    from serkit.errors import RecipeError

    text = BASE.format(name="ft", xa="", xb="", fusion="{type: concat}", train="", extra="").replace(
        "ge2e: {extractor: {type: ge2e}}",
        "ge2e: {extractor: {type: ge2e, finetune: true}, encoder: {type: mean_pool}}",
    )
    data, lines = load_yaml_text(text)
    with pytest.raises(RecipeError) as info:
        validate_recipe_data(data, lines)
    assert info.value.problems == [
        ("features.ge2e.encoder", 15, "extractor 'ge2e' is fine-tuned (it is its own encoder); remove the encoder")
    ]


def test_speaker_stats_match_numpy_and_low_coverage_warns(tmp_path: Path) -> None:
    from rich.console import Console

    from serkit.engine.prepare import DomainData
    from serkit.engine.prepare import speaker_norms as _speaker_norms
    from serkit.engine.speaker_norm import speaker_stats
    from serkit.features.store import FeatureStore
    from serkit.interfaces.base import ComponentParams
    from serkit.interfaces.extractor import Extractor

    class Vec(Extractor):
        name = "vec_test"

        class Params(ComponentParams):
            pass

        output = "vector"  # type: ignore[assignment]
        sample_rate = 16000  # type: ignore[assignment]
        dim = 3  # type: ignore[assignment]

        def extract(self, wav):  # type: ignore[no-untyped-def]
            return wav[:3]

    store = FeatureStore(tmp_path, Vec())
    rng = np.random.default_rng(0)
    arrays = {f"k{i}": rng.standard_normal(3).astype("float32") for i in range(6)}
    store.put_many(list(arrays.items()))
    keys = list(arrays)
    speakers = ["a", "a", "a", "b", "b", "b"]
    stats = speaker_stats(keys, speakers, store)
    a = np.stack([arrays[k] for k in keys[:3]])
    np.testing.assert_allclose(stats["a"][0], a.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["a"][1], a.std(0), rtol=1e-4)

    from serkit.data.utterance import Utterance

    utts = [
        Utterance(k, "/x", lab, s) for k, s, lab in zip(keys, speakers, ["x", "y", "z", "x", "x", "x"], strict=True)
    ]
    dd = DomainData(utts, ["x", "y", "z"], {"v": keys})

    class R:
        class data:
            speaker_norm_min_coverage = 0.5

    with pytest.warns(
        UserWarning, match=r"speaker_norm on domain 'd': 1 of 2 speakers cover less than 50% of its 3 labels \(b\)"
    ):
        _speaker_norms(R, {"d": dd}, {"v": store}, {"d": ["x", "y", "z"]}, Console(quiet=True))


def test_balanced_loader_batches_have_n_classes_times_m() -> None:
    from serkit.engine.data import FeatureDataset, make_loader

    class FakeStore:
        def get(self, key: str) -> np.ndarray:
            return np.full(2, float(key), dtype=np.float32)

    targets = [i % 4 for i in range(40)]
    keys = {"v": [str(i) for i in range(40)]}
    ds = FeatureDataset(keys, {"v": FakeStore()}, targets, list(range(40)))  # type: ignore[dict-item]
    dl = make_loader(ds, "d", batch_size=8, shuffle=True, seed=0, balanced_per_class=4)
    dl.batch_sampler.set_epoch(1)
    for batch in dl:
        counts = np.bincount(batch.targets.numpy(), minlength=4)
        assert sorted(c for c in counts if c) == [4, 4]
