"""``serkit run`` with pooled SSL layers and the ``weighted_layers`` encoder, end to end (tiny random checkpoints).

Done-means of issue 14: a recipe with ``{type: whisper, model: <tiny local folder>, layer:
weighted, pool: mean}`` and ``weighted_layers`` trains on the synthetic corpus and reports
``layer_weights`` per domain; the same with ``hf_ssl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serkit.testing.cli import run_recipe_isolated

pytest.importorskip("transformers")
os.environ["HF_HUB_OFFLINE"] = "1"

RECIPE = """
name: probe
seed: 0
repeats: 1
device: cpu
protocol: {{type: speaker, k: 2}}
domains:
  xa: {{dataset: {{type: synthetic, languages: [xa], speakers: 4, per_class: 4, seed: 3}}}}
  xb: {{dataset: {{type: synthetic, languages: [xb], speakers: 4, per_class: 4, seed: 3}}}}
features:
  ssl:
    extractor: {extractor}
    encoder: {encoder}
fusion: {{type: concat}}
heads:
  default: {{type: mlp, hidden: [16], activations: [relu], dropout: 0.0}}
loss: {{main: {{type: cross_entropy}}}}
optimizer: {{type: adamw, lr: 5.0e-2}}
train: {{epochs: 3, batch_size: 16, select_by: val_ua}}
store: {{dtype: float16}}
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    from serkit.testing.tiny_hf import save_tiny_ssl, save_tiny_whisper

    root = tmp_path_factory.mktemp("ckpts")
    return {"whisper": save_tiny_whisper(root / "whisper"), "hf_ssl": save_tiny_ssl(root / "w2v")}


def _run(tmp_path: Path, extractor: str, encoder: str) -> tuple[Path, dict]:
    run_dir = run_recipe_isolated(RECIPE.format(extractor=extractor, encoder=encoder), tmp_path, tmp_path / "cache")
    return run_dir, json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("kind", ["whisper", "hf_ssl"])
def test_pooled_layers_with_per_domain_weights(tmp_path, checkpoints, kind):
    n_states = 4 if kind == "whisper" else 3
    extractor = f"{{type: {kind}, model: '{checkpoints[kind]}', layer: weighted, pool: mean}}"
    run_dir, results = _run(tmp_path, extractor, "{type: weighted_layers, per_domain: true}")
    for d in ("xa", "xb"):
        lw = results["domains"][d]["layer_weights"]["ssl"]
        assert len(lw["mean"]) == n_states and abs(sum(lw["mean"]) - 1.0) < 1e-4
        assert lw["shared"] is False and len(lw["std"]) == n_states
        assert lw["mean"] != [pytest.approx(1 / n_states)] * n_states  # trained away from the uniform start
    run = results["runs"][0]
    assert set(run["encoders"]["ssl"]["layer_weights"]) == {"xa", "xb"}
    assert (run_dir / "plots" / "layer_weights.png").stat().st_size > 1000
    report = (run_dir / "report.md").read_text()
    assert "## Layer weights" in report and "| xa | " in report
    assert "layer_weights.png" in (run_dir / "report.html").read_text() or "data:image/png" in (
        run_dir / "report.html"
    ).read_text()
    # the run's model loads and predicts with the per-domain weights
    import serkit

    model = serkit.load_model(run_dir)
    wav = next((tmp_path / "cache").rglob("*.wav"))
    for d in ("xa", "xb"):
        assert model.predict(str(wav), domain=d)
    if kind == "whisper":  # the vector stream's encoder (per-domain weights) exports to ONNX and matches torch
        pytest.importorskip("onnxruntime")
        from serkit.testing.cli import run_cli

        assert run_cli(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
        sidecar = json.loads((tmp_path / "onnx" / "serkit_onnx.json").read_text())
        assert [i["shape"] for i in sidecar["inputs"]] == [["batch", n_states * 32]]


def test_frame_level_layers_with_a_sequence_encoder_and_shared_weights(tmp_path, checkpoints):
    extractor = f"{{type: hf_ssl, model: '{checkpoints['hf_ssl']}', layer: weighted}}"
    encoder = "{type: weighted_layers, sequence_encoder: {type: mean_pool, stats: true}}"
    _, results = _run(tmp_path, extractor, encoder)
    lw = {d: results["domains"][d]["layer_weights"]["ssl"] for d in ("xa", "xb")}
    assert lw["xa"]["shared"] is True and lw["xa"]["mean"] == lw["xb"]["mean"]
    assert set(results["runs"][0]["encoders"]["ssl"]["layer_weights"]) == {"*"}


def _problems(tmp_path: Path, extractor: str, encoder: str) -> str:
    from serkit.config.recipe import load_recipe
    from serkit.errors import RecipeError

    path = tmp_path / "bad.yaml"
    path.write_text(RECIPE.format(extractor=extractor, encoder=encoder))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return str(info.value)


def test_recipe_validation(tmp_path, checkpoints):
    w2v = checkpoints["hf_ssl"]
    pooled = f"{{type: hf_ssl, model: '{w2v}', layer: weighted, pool: mean}}"
    msg = _problems(tmp_path, pooled, "{type: mean_pool}")
    assert "yields one vector per utterance; remove the encoder or use one that takes vectors (weighted_layers)" in msg
    msg = _problems(tmp_path, pooled, "{type: weighted_layers, sequence_encoder: {type: cnn_bilstm_attn}}")
    assert "sequence_encoder is for frame-level streams (pool: none): remove it" in msg
    msg = _problems(tmp_path, f"{{type: hf_ssl, model: '{w2v}', layer: -1}}", "{type: weighted_layers}")
    assert "extractor 'hf_ssl' stores a single layer; weighted_layers needs several" in msg
    msg = _problems(tmp_path, f"{{type: hf_ssl, model: '{w2v}', layer: weighted}}",
                    "{type: weighted_layers, sequence_encoder: {type: mean_poool}}")
    assert "sequence_encoder: unknown encoder type 'mean_poool'; available:" in msg


def test_ssl_probe_recipe_on_predefined_folds(tmp_path, checkpoints, monkeypatch):
    """recipes/ssl_probe.yaml as shipped, pointed (through its variables) at a tiny model and a fold CSV."""
    import numpy as np
    import soundfile as sf

    from serkit.config.recipe import load_recipe

    rows = ["path,label,speaker,fold"]
    rng = np.random.default_rng(0)
    for s, speaker in enumerate(("s1", "s2", "s3", "s4")):
        for label, f0 in (("angry", 220.0), ("sad", 110.0)):
            for k in range(3):
                t = np.arange(int(16000 * (0.6 + 0.2 * k))) / 16000
                wav = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.05 * s) * t) + 0.02 * rng.standard_normal(t.size)
                name = f"{speaker}/{label}{k}.wav"
                (tmp_path / "corpus" / speaker).mkdir(parents=True, exist_ok=True)
                sf.write(tmp_path / "corpus" / name, wav.astype(np.float32), 16000)
                rows.append(f"{name},{label},{speaker},{s + 1}")
    (tmp_path / "folds.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("SERKIT_FOLDS", str(tmp_path / "folds.csv"))
    monkeypatch.setenv("SERKIT_SAVEE", str(tmp_path / "corpus"))
    monkeypatch.setenv("SERKIT_SSL_MODEL", str(checkpoints["whisper"]))
    shipped = Path(__file__).resolve().parents[2] / "recipes" / "ssl_probe.yaml"
    # the --set of the recipe's header switches the stream to hf_ssl
    switch = ["features.ssl.extractor.type=hf_ssl", f"features.ssl.extractor.model={checkpoints['hf_ssl']}"]
    other, _ = load_recipe(shipped, switch)
    assert other.features["ssl"].extractor.type == "hf_ssl"
    text = shipped.read_text().replace("epochs: 100", "epochs: 3")
    run_dir = run_recipe_isolated(text, tmp_path, tmp_path / "cache")
    results = json.loads((run_dir / "results.json").read_text())
    assert results["protocol"] == "predefined" and results["n_runs"] == 4  # one run per fold
    lw = results["domains"]["en"]["layer_weights"]["ssl"]
    assert len(lw["mean"]) == 4 and abs(sum(lw["mean"]) - 1) < 1e-4
