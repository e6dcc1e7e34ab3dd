"""``serkit export --format onnx``: the classifier on top of the features, checked with onnxruntime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serkit.errors import ModelError
from serkit.testing.cli import run_cli, run_recipe_isolated

XA = "{type: synthetic, languages: [xa], speakers: 4, per_class: 3, emotions: [angry, neutral, sad]}"
XB = "{type: synthetic, languages: [xb], speakers: 4, per_class: 3, emotions: [angry, happy, neutral, sad]}"
RECIPE = f"""\
name: onnx
seed: 0
protocol: {{type: speaker, k: 2, folds: [0]}}
domains:
  xa: {{dataset: {XA}}}
  xb: {{dataset: {XB}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 13, hop_ms: 20}}
    encoder: {{type: cnn_bilstm_attn, channels: 8, kernel_sizes: [3, 5], lstm_hidden: 8, lstm_layers: 2,
              attention_dim: 16}}
  ge2e:
    extractor: {{type: ge2e}}
fusion: {{type: gated_nas, selector: ge2e, width: 16}}
heads:
  default: {{type: mlp, hidden: [16], activations: [tanh], dropout: 0.1}}
train: {{epochs: 2, batch_size: 8}}
logging: {{tensorboard: false, mlflow: false}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("onnx")
    onnx = ["export", str(folder / "run"), "--format", "onnx", "--out", str(folder / "onnx")]
    yield run_recipe_isolated(RECIPE, folder, session_cache, then=[onnx])


def _padded(features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([f.shape[0] for f in features], dtype=np.int64)
    x = np.zeros((len(features), int(lengths.max()), features[0].shape[1]), dtype=np.float32)
    for i, f in enumerate(features):
        x[i, : f.shape[0]] = f
    return x, lengths


def test_sidecar_describes_inputs_labels_and_extractors(run: Path) -> None:
    import onnx

    from serkit.inference import load_model

    folder = run.parent / "onnx"
    assert sorted(p.name for p in folder.iterdir()) == ["serkit_onnx.json", "xa.onnx", "xb.onnx"]
    side = json.loads((folder / "serkit_onnx.json").read_text())
    model = load_model(run)
    assert side["checkpoint"] == model.checkpoint == "r0-f0"
    assert side["inputs"] == [
        {"name": "mfcc", "shape": ["batch", "mfcc_time", 13], "dtype": "float32"},
        {"name": "mfcc_lengths", "shape": ["batch"], "dtype": "int64"},
        {"name": "ge2e", "shape": ["batch", 256], "dtype": "float32"},
    ]
    assert [s["name"] for s in side["streams"]] == ["mfcc", "ge2e"]
    assert side["streams"][0]["extractor"]["n_mfcc"] == 13 and side["streams"][0]["sample_rate"] == 16000
    assert side["streams"][0]["encoder"]["type"] == "cnn_bilstm_attn" and side["streams"][1]["encoder"] is None
    assert side["speaker_norm"] is None and side["store_dtype"] == "float32"
    for d in ("xa", "xb"):
        entry = side["domains"][d]
        assert entry["labels"] == model.labels(d)
        assert entry["outputs"] == [{"name": "logits", "shape": ["batch", len(model.labels(d))], "dtype": "float32"}]
        assert entry["verified_max_abs_error"] < 1e-4
        proto = onnx.load(str(folder / entry["file"]))
        props = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(props["serkit.labels"]) == model.labels(d) and props["serkit.domain"] == d
        dims = {i.name: [x.dim_param or x.dim_value for x in i.type.tensor_type.shape.dim] for i in proto.graph.input}
        assert dims == {"mfcc": ["batch", "mfcc_time", 13], "mfcc_lengths": ["batch"], "ge2e": ["batch", 256]}


def test_onnxruntime_logits_equal_torch_on_real_features(run: Path) -> None:
    import onnxruntime

    from serkit.data.audio import load_audio
    from serkit.inference import load_model

    model = load_model(run)
    files = sorted((Path(p) for p in _synthetic_paths("xb")), key=str)[:5]  # batch 5; export used 2
    wavs = [load_audio(str(f), 16000) for f in files]
    mfcc = [model.extractors["mfcc"].extract(w) for w in wavs]
    x, lengths = _padded(mfcc)
    assert len(set(lengths.tolist())) > 1 and x.shape[1] != 16  # ragged, and not the export's 16 frames
    ge2e = np.stack([model.extractors["ge2e"].extract(w) for w in wavs]).astype(np.float32)
    session = onnxruntime.InferenceSession(str(run.parent / "onnx" / "xb.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"mfcc": x, "mfcc_lengths": lengths, "ge2e": ge2e})
    expected = model.logits([str(f) for f in files], "xb")
    assert logits.shape == (5, 4)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("batch", "time"), [(1, 7), (6, 41)])
def test_onnxruntime_matches_torch_for_other_batch_sizes_and_lengths(run: Path, batch: int, time: int) -> None:
    import onnxruntime
    import torch

    from serkit.export import _example_inputs, _onnx_head, _onnx_inputs
    from serkit.inference import load_model

    model = load_model(run, device="cpu")
    inputs = _onnx_inputs(model)
    example = _example_inputs(inputs, batch=batch, time=time, seed=batch)
    session = onnxruntime.InferenceSession(str(run.parent / "onnx" / "xa.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {i["name"]: t.numpy() for i, t in zip(inputs, example, strict=True)})
    with torch.inference_mode():
        expected = _onnx_head(model, "xa")(*example).numpy()
    assert logits.shape == (batch, 3)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_missing_onnx_and_non_empty_folder_are_clear_errors(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from serkit import export

    with pytest.raises(ModelError, match="exists and is not empty"):
        export.export_onnx(run, run.parent / "onnx")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(ModelError) as err:
        export.export_onnx(run, tmp_path / "x")
    assert str(err.value) == "ONNX export needs the onnx package: pip install 'serkit[onnx]'"
    assert run_cli(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "y")]) == 2
    assert "pip install 'serkit[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def _synthetic_paths(domain: str) -> list[str]:
    import yaml

    from serkit.builtin.datasets.synthetic import SyntheticDataset

    spec = yaml.safe_load(XA if domain == "xa" else XB)
    spec.pop("type")
    return [u.path for u in SyntheticDataset(**spec).utterances()]
