"""data.standardize: statistics of the training split, stored in the model as buffers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from serkit.testing.cli import run_cli

XA = "{type: synthetic, languages: [xa], speakers: 6, per_class: 3, emotions: [angry, neutral, sad]}"
XB = "{type: synthetic, languages: [xb], speakers: 6, per_class: 3, emotions: [angry, happy, sad]}"
RECIPE = f"""\
name: std
seed: 0
protocol: {{type: speaker, k: 3, folds: [1]}}
domains:
  xa: {{dataset: {XA}}}
  xb: {{dataset: {XB}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 13, hop_ms: 20}}
    encoder: {{type: mean_pool, stats: true}}
heads:
  default: {{type: mlp, hidden: [16], activations: [relu], dropout: 0.0}}
train: {{epochs: 2, batch_size: 8}}
data: {{standardize: MODE}}
"""


def test_standardize_math() -> None:
    from serkit.nn.standardize import Standardize

    norm = Standardize(3)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(norm(x), x)  # identity until fitted
    norm.set_stats(torch.tensor([1.0, 0.0, -1.0]), torch.tensor([2.0, 0.0, 4.0]), eps=0.5)
    assert torch.allclose(norm(x), torch.tensor([[0.0, 4.0, 1.0]]))  # std floored at eps
    frames = torch.ones(2, 5, 3)
    assert norm(frames).shape == (2, 5, 3)
    assert set(norm.state_dict()) == {"mean", "std"}


def _split(run: Path, domain: str, run_id: str, which: str) -> list[tuple[str, str]]:
    """``(audio path, label)`` of a run's train/val/test utterances, from splits/<domain>.csv."""
    import yaml

    from serkit.builtin.datasets.synthetic import SyntheticDataset

    spec = yaml.safe_load(XA if domain == "xa" else XB)
    spec.pop("type")
    by_id = {u.id: u for u in SyntheticDataset(**spec).utterances()}
    with open(run / "splits" / f"{domain}.csv", newline="") as f:
        return [(by_id[r["id"]].path, r["label"]) for r in csv.DictReader(f) if r[run_id] == which]


def _train_means(run: Path, domains: list[str], run_id: str) -> np.ndarray:
    """Mean MFCC frame of the run's training utterances, recomputed from the audio."""
    from serkit.data.audio import load_audio
    from serkit.plugins import get_registry

    ext = get_registry().create("extractor", {"type": "mfcc", "n_mfcc": 13, "hop_ms": 20})
    frames = []
    for d in domains:
        for path, _ in _split(run, d, run_id, "train"):
            wav = load_audio(path, ext.sample_rate)
            frames.append(np.asarray(ext.extract(wav), dtype=np.float64))
    return np.concatenate(frames).mean(axis=0)


@pytest.mark.parametrize("mode", ["global", "domain"])
def test_statistics_come_from_the_training_split_and_predict_uses_them(tmp_path: Path, mode: str) -> None:
    from safetensors.torch import load_file

    from serkit.inference import load_model

    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("MODE", mode))
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    weights = load_file(str(out / "checkpoints" / "r0-f1.safetensors"))
    keys = ["*"] if mode == "global" else ["xa", "xb"]
    assert sorted(k for k in weights if k.startswith("norms.")) == sorted(
        f"norms.{k}.mfcc.{b}" for k in keys for b in ("mean", "std")
    )
    for k in keys:
        domains = ["xa", "xb"] if k == "*" else [k]
        expected = _train_means(out, domains, "r0-f1")
        assert np.allclose(weights[f"norms.{k}.mfcc.mean"].numpy(), expected, rtol=1e-3, atol=1e-2)
        assert (weights[f"norms.{k}.mfcc.std"] > 0.01).all()
    if mode == "domain":
        assert not torch.allclose(weights["norms.xa.mfcc.mean"], weights["norms.xb.mfcc.mean"])
    # the model applies them when predicting: the run's own test split gives its reported WA
    model = load_model(out, device="cpu")
    reported = json.loads((out / "results.json").read_text())["runs"][0]["test"]
    for d in ("xa", "xb"):
        rows = _split(out, d, "r0-f1", "test")
        preds = model.predict([path for path, _ in rows], d)
        correct = sum(p.label == label for p, (_, label) in zip(preds, rows, strict=True))
        assert correct == round(reported[d]["wa"] * len(rows))


def test_init_from_refuses_a_different_standardisation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("MODE", "global"))
    base = tmp_path / "base"
    assert run_cli(["run", str(recipe), "--out", str(base), "--quiet"]) == 0
    args = ["adapt", str(base), "--domain", "xc", "--dataset", "synthetic", "--set", "data.standardize=domain"]
    assert run_cli([*args, "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "data.standardize: 'global' in the run, 'domain' in the recipe" in capsys.readouterr().err


def test_with_speaker_norm_the_statistics_are_of_the_speaker_normalised_features() -> None:
    """The loaders standardise per speaker first: the model's statistics must be of what it is fed."""
    from serkit.engine.standardize import fit_standardize
    from serkit.nn.standardize import Standardize

    rng = np.random.default_rng(0)
    arrays = {f"k{i}": (rng.standard_normal((5, 2)) * 3 + 10 * (i % 2)).astype(np.float32) for i in range(6)}

    class Store:
        def get(self, key: str) -> np.ndarray:
            return arrays[key]

    speakers = ["a", "b", "a", "b", "a", "b"]  # speaker b's frames sit 10 higher
    per_speaker = {}
    for spk in "ab":
        frames = np.concatenate([arrays[f"k{i}"] for i in range(6) if speakers[i] == spk]).astype(np.float64)
        per_speaker[spk] = (frames.mean(0), frames.std(0))

    class Model:
        def __init__(self) -> None:
            self.norms = {"*": {"s": Standardize(2)}}

    model = Model()
    fit_standardize(
        model,
        {"d": {"s": list(arrays)}},
        {"d": [0, 1, 2, 3]},
        {"s": Store()},
        speaker_norms={"d": {"s": per_speaker}},
        speakers={"d": speakers},
    )
    fed = np.concatenate(
        [(arrays[f"k{i}"] - per_speaker[speakers[i]][0]) / per_speaker[speakers[i]][1] for i in range(4)]
    )
    norm = model.norms["*"]["s"]
    np.testing.assert_allclose(norm.mean.numpy(), fed.mean(0), atol=1e-5)
    np.testing.assert_allclose(norm.std.numpy(), fed.std(0), atol=1e-5)
    assert abs(float(norm.mean[0])) < 1.0  # not the raw mean (~5: half the frames are 10 higher)
