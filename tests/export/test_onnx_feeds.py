"""ONNX export of the paper's sequence encoder: quiet, and its inputs computed by onnx_feeds (issue 17)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

RECIPE = """\
name: onnx_feeds
seed: 0
protocol: {type: speaker, k: 3, folds: [0]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 3, emotions: [angry, neutral, sad]}}
features:
  mfcc:
    extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}
    encoder: {type: cnn_bilstm_attn, channels: 8, kernel_sizes: [3], lstm_hidden: 8, attention_dim: 8}
heads:
  default: {type: mlp, hidden: [16], activations: [relu], dropout: 0.2}
store: {dtype: float16}
train: {epochs: 1, batch_size: 8}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Path:
    from serkit.testing.cli import run_recipe_isolated

    return run_recipe_isolated(RECIPE, tmp_path_factory.mktemp("onnx-feeds"), session_cache)


def test_export_is_quiet_and_onnx_feeds_give_the_models_logits(
    run: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import onnxruntime

    from serkit.export import onnx_feeds
    from serkit.inference import load_model
    from serkit.testing.cli import run_cli

    out = tmp_path / "onnx"
    capfd.readouterr()
    assert run_cli(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    captured = capfd.readouterr()  # file descriptors: C++ warnings of the exporter too
    assert captured.err == ""  # no PackPadded (or any other) warning: the CPU BiLSTM path is padded
    assert captured.out == f"exported {run} -> {out}\n"
    with open(run / "splits" / "xa.csv", newline="") as f:
        ids = [r["id"] for r in csv.DictReader(f)][:5]
    from serkit.builtin.datasets.synthetic import SyntheticDataset

    by_id = {u.id: u.path for u in SyntheticDataset(languages=["xa"], speakers=6, per_class=3,
                                                    emotions=["angry", "neutral", "sad"]).utterances()}
    files = [by_id[i] for i in ids]
    feeds = onnx_feeds(out, files)
    assert sorted(feeds) == ["mfcc", "mfcc_lengths"]
    assert feeds["mfcc"].dtype == np.float32 and feeds["mfcc_lengths"].dtype == np.int64
    assert feeds["mfcc"].shape == (5, int(feeds["mfcc_lengths"].max()), 13)
    (logits,) = onnxruntime.InferenceSession(str(out / "xa.onnx")).run(["logits"], feeds)
    np.testing.assert_allclose(logits, load_model(run).logits(files, "xa"), rtol=0, atol=1e-4)
