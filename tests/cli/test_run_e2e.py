"""End-to-end: ``serkit run`` on generated data, through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.testing.cli import run_cli

RECIPE = """\
name: e2e
seed: 0
repeats: 1
protocol: {protocol}
domains:
  xa: {{dataset: {{type: synthetic, languages: [xa], speakers: 6, per_class: 8, seed: 1}}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 20}}
    encoder: {{type: cnn_bilstm_attn, channels: 16, kernel_sizes: [3], lstm_hidden: 32, attention_dim: 32}}
  ge2e:
    extractor: {{type: ge2e}}
heads:
  default: {{type: mlp, hidden: [64], activations: [relu], dropout: 0.1}}
train: {{epochs: 10, batch_size: 16}}
"""


@pytest.mark.slow
def test_run_speaker_independent_beats_chance_and_writes_run_folder(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(protocol="{type: speaker, k: 3, folds: [0, 1]}"))
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    dom = results["domains"]["xa"]
    assert results["protocol"] == "speaker" and results["n_runs"] == 2
    assert dom["labels"] == ["angry", "happy", "neutral", "sad"]
    assert len(dom["ua"]["values"]) == 2
    assert dom["ua"]["mean"] > 0.5, dom  # chance is 0.25
    assert np.isclose(dom["ua"]["mean"], np.mean(dom["ua"]["values"]))
    assert np.array(dom["confusion"]).sum() == dom["n_test"]
    for name in (
        "recipe.yaml",
        "environment.json",
        "report.md",
        "splits/xa.csv",
        "checkpoints/r0-f0.safetensors",
        "checkpoints/r0-f1.safetensors",
        "checkpoints/model.json",
        "report.html",
        "plots/confusion_xa.png",
        "plots/training_curves.png",
    ):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert f"{dom['ua']['mean']:.4f} ± {dom['ua']['std']:.4f}" in report
    assert "speaker-independent" in report
    # splits: no speaker in two sets of the same run
    import csv

    rows = list(csv.DictReader((out / "splits" / "xa.csv").open()))
    for run_id in ("r0-f0", "r0-f1"):
        roles: dict[str, set[str]] = {}
        for r in rows:
            roles.setdefault(r["speaker"], set()).add(r[run_id])
        assert all(len(v) == 1 for v in roles.values()), roles
    # a second identical run reuses every cached feature
    out2 = tmp_path / "run2"
    assert run_cli(["run", str(recipe), "--out", str(out2), "--quiet", "--set", "protocol.folds=[0]"]) == 0
    ext = json.loads((out2 / "results.json").read_text())["extraction"]
    assert ext["mfcc"]["computed"] == 0 and ext["mfcc"]["cached"] == 192
    assert ext["ge2e"]["computed"] == 0 and ext["ge2e"]["cached"] == 192
    # the checkpoint loads without pickle and has every parameter
    from safetensors.torch import load_file

    weights = load_file(str(out / "checkpoints" / "r0-f0.safetensors"))
    assert any(k.startswith("encoders.mfcc.") for k in weights)
    assert any(k.startswith("heads.xa.") for k in weights)


def _tone_corpus(root: Path) -> None:
    rng = np.random.default_rng(0)
    sr = 16000
    for emo, f0 in (("happy", 330.0), ("sad", 140.0)):
        for spk in ("S1", "S2", "S3"):
            for i in range(6):
                t = np.arange(int(0.6 * sr)) / sr
                f = f0 * (1 + 0.05 * rng.standard_normal())
                wav = 0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(t.size)
                (root / emo).mkdir(parents=True, exist_ok=True)
                sf.write(root / emo / f"{spk}_{i}.wav", wav.astype("float32"), sr)


def test_bad_audio_in_folder_dataset_errors_or_is_skipped_and_listed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _tone_corpus(corpus)
    bad = corpus / "sad" / "S2_broken.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: folder_e2e\n"
        f"domains: {{aa: {{dataset: {{type: folder, root: '{corpus}', speaker_regex: '^(S\\d+)_'}}}}}}\n"
        "features: {mfcc: {extractor: {type: mfcc, n_mfcc: 13}, encoder: {type: mean_pool}}}\n"
        "train: {epochs: 3, batch_size: 8}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "serkit",
            "run",
            str(recipe),
            "--out",
            str(tmp_path / "r1"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"error: {bad.resolve()}: not a readable audio file" in proc.stderr.replace("\n", "")
    out = tmp_path / "r2"
    code = run_cli(["run", str(recipe), "--out", str(out), "--quiet", "--set", "data.on_bad_audio=skip"])
    assert code == 0
    listed = json.loads((out / "bad_files.json").read_text())
    assert [b["path"] for b in listed] == [str(bad.resolve())]
    assert "not a readable audio file" in listed[0]["error"]
    results = json.loads((out / "results.json").read_text())
    assert results["n_bad_files"] == 1
    assert results["domains"]["aa"]["n_utterances"] == 36


def test_missing_dataset_stops_with_how_to_get(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: missing\n"
        f"domains: {{aa: {{dataset: {{type: folder, root: '{tmp_path / 'nowhere'}'}}}},"
        f" bb: {{dataset: {{type: manifest, path: '{tmp_path / 'm.csv'}'}}}}}}\n"
        "features: {mfcc: {extractor: {type: mfcc}, encoder: {type: mean_pool}}}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "serkit",
            "run",
            str(recipe),
            "--out",
            str(tmp_path / "r"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot load the recipe's datasets:" in proc.stderr
    assert f"domains.aa (folder): folder dataset: root {tmp_path / 'nowhere'} does not exist" in proc.stderr
    assert f"domains.bb (manifest): manifest {tmp_path / 'm.csv'}: file not found" in proc.stderr
    assert not (tmp_path / "r").exists()  # nothing is written before the datasets load


def test_first_run_saves_test_embeddings_and_tsne(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: emb\nprotocol: {type: speaker, k: 3, folds: [0]}\n"
        "domains: {xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 4}}}\n"
        "features: {mfcc: {extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}, encoder: {type: mean_pool}}}\n"
        "heads: {default: {type: mlp, hidden: [16]}}\ntrain: {epochs: 2, batch_size: 16}\n"
    )
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    with np.load(out / "embeddings" / "r0-f0.npz") as data:
        x, y = data["xa.x"], data["xa.y"]
        assert list(data["xa.labels"]) == res["domains"]["xa"]["labels"]
    assert x.shape == (res["domains"]["xa"]["n_test"], 13) and len(y) == len(x)  # mean_pool of 13 MFCCs
    assert (out / "plots" / "tsne.png").stat().st_size > 10_000
    # two runs side by side (the paper's Fig. 3 compares alpha = 0 and alpha > 0)
    assert run_cli(["report", str(out), str(out), "--tsne-compare", str(tmp_path / "t.png"), "--domain", "xa"]) == 0
    assert (tmp_path / "t.png").stat().st_size > 10_000
    assert run_cli(["report", str(out), "--tsne-compare", str(tmp_path / "u.png"), "--domain", "zz"]) == 2


def test_resume_keeps_finished_runs_and_reproduces_the_rest(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: resume\nprotocol: {type: speaker, k: 3, folds: [0, 1]}\n"
        "domains: {xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 4}}}\n"
        "features: {mfcc: {extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}, encoder: {type: mean_pool}}}\n"
        "heads: {default: {type: mlp, hidden: [16]}}\ntrain: {epochs: 2, batch_size: 16}\n"
    )
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    full = json.loads((out / "results.json").read_text())
    kept = (out / "runs" / "r0-f0.json").stat().st_mtime_ns
    # as if the process died during the second fold
    (out / "runs" / "r0-f1.json").unlink()
    (out / "checkpoints" / "r0-f1.safetensors").unlink()
    (out / "results.json").unlink()
    assert run_cli(["run", "--resume", str(out), "--quiet"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert (out / "runs" / "r0-f0.json").stat().st_mtime_ns == kept
    assert (out / "checkpoints" / "r0-f1.safetensors").is_file()
    assert again["domains"]["xa"]["ua"]["values"] == full["domains"]["xa"]["ua"]["values"]
    assert run_cli(["run", str(recipe), "--resume", str(out), "--out", str(tmp_path / "x")]) == 2  # usage error
