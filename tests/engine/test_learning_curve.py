"""serkit adapt / learning-curve on the synthetic pseudo-languages: adaptation beats scratch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from serkit.testing.cli import run_cli

EMOTIONS = "[angry, happy, neutral, sad]"
BASE = f"""\
name: other-languages
seed: 0
protocol: {{type: speaker, k: 3, folds: [0]}}
domains:
  xa: {{dataset: {{type: synthetic, languages: [xa], speakers: 6, per_class: 8, emotions: {EMOTIONS}}}}}
  xb: {{dataset: {{type: synthetic, languages: [xb], speakers: 6, per_class: 8, emotions: {EMOTIONS}}}}}
  xc: {{dataset: {{type: synthetic, languages: [xc], speakers: 6, per_class: 8, emotions: {EMOTIONS}}}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 20, hop_ms: 20}}
    encoder: {{type: mean_pool, stats: true}}
  delta:
    extractor: {{type: mfcc, n_mfcc: 13, hop_ms: 20, deltas: 1}}
    encoder: {{type: mean_pool, stats: true}}
fusion: {{type: gated_nas, selector: mfcc, width: 32}}
heads:
  default: {{type: mlp, hidden: [32], activations: [relu], dropout: 0.1}}
optimizer: {{type: adamw, lr: 3.0e-3, weight_decay: 0.01}}
train: {{epochs: 12, batch_size: 16}}
"""
NEW = [
    "--domain",
    "xd",
    "--dataset",
    "synthetic",
    "--param",
    "languages=[xd]",
    "--param",
    "speakers=6",
    "--param",
    "per_class=16",
    "--param",
    f"emotions={EMOTIONS}",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("curve")
    (tmp / "base.yaml").write_text(BASE)
    out = tmp / "base"
    assert run_cli(["run", str(tmp / "base.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


def test_adapt_dry_run_writes_the_adaptation_recipe(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["adapt", str(trained), *NEW, "--shots", "5", "--dry-run"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert list(data["domains"]) == ["xd"]
    assert data["domains"]["xd"]["shots"] == 5
    assert data["init_from"] == {"run": str(trained.resolve()), "checkpoint": "r0-f0"}
    assert data["freeze"] == ["encoders", "fusion", "heads"]
    assert data["fusion"]["type"] == "gated_nas"


def test_adapt_refuses_an_existing_domain(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["adapt", str(trained), "--domain", "xa", "--dataset", "synthetic", "--dry-run"]
    assert run_cli(args) == 2
    assert "--domain 'xa' is already a domain of" in capsys.readouterr().err


def test_learning_curve_adaptation_beats_scratch_at_k10(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "curve"
    args = [
        "learning-curve",
        str(trained),
        *NEW,
        "--shots",
        "10",
        "--fusion-from",
        "xa",
        "--set",
        "repeats=4",
        "--out",
        str(out),
        "--quiet",
    ]
    assert run_cli(args) == 0
    curve = json.loads((out / "curve.json").read_text())
    ua = curve["ua"]
    assert set(ua) == {"adapt", "scratch", "probe", "zero_shot"}
    assert curve["chance"] == 0.25
    assert all(ua[m]["10"]["n"] == 4 for m in ua)
    margin = ua["adapt"]["10"]["mean"] - ua["scratch"]["10"]["mean"]
    print(f"adapt {ua['adapt']['10']} scratch {ua['scratch']['10']} margin {margin:.4f}")
    assert margin > 0.02
    for name in ("curve.md", "curve.csv", "curve.png"):
        assert (out / name).stat().st_size > 0
    table = (out / "curve.md").read_text()
    assert "| adapt |" in table and "| zero_shot |" in table
    # every method of a K saw the same test split, and each repeat drew its own shots
    splits = {m: (out / "k10" / m / "splits" / "xd.csv").read_text() for m in ("adapt", "scratch", "probe")}
    rows = {m: [line.split(",")[3:] for line in text.splitlines()[1:]] for m, text in splits.items()}
    tests = {m: [tuple(i for i, r in enumerate(rows[m]) if r[k] == "test") for k in range(4)] for m in rows}
    assert tests["adapt"] == tests["scratch"] == tests["probe"]
    trains = [tuple(i for i, r in enumerate(rows["adapt"]) if r[k] == "train") for k in range(4)]
    assert all(len(t) == 40 for t in trains) and len(set(trains)) == 4
    # a second call finds every run finished and only rewrites the curve
    before = (out / "k10" / "adapt" / "results.json").stat().st_mtime_ns
    assert run_cli(args) == 0
    assert (out / "k10" / "adapt" / "results.json").stat().st_mtime_ns == before
