"""``serkit.load_model`` / ``predict`` / ``embed`` and ``serkit predict`` on a tiny trained run."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.errors import AudioError, ModelError

XA = "{type: synthetic, languages: [xa], speakers: 6, per_class: 3, emotions: [angry, neutral, sad]}"
XB = "{type: synthetic, languages: [xb], speakers: 6, per_class: 3, emotions: [angry, happy, sad]}"
RECIPE = f"""\
name: infer
seed: 0
protocol: {{type: speaker, k: 3, folds: [0, 1]}}
domains:
  xa: {{dataset: {XA}}}
  xb: {{dataset: {XB}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 13, hop_ms: 20}}
    encoder: {{type: mean_pool, stats: true}}
heads:
  default: {{type: mlp, hidden: [16], activations: [relu], dropout: 0.2}}
train: {{epochs: 3, batch_size: 8}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Iterator[Path]:
    from serkit.testing.cli import run_recipe_isolated

    yield run_recipe_isolated(RECIPE, tmp_path_factory.mktemp("inference"), session_cache)


def utterances(domain: str) -> list:
    import yaml

    from serkit.builtin.datasets.synthetic import SyntheticDataset

    spec = yaml.safe_load(XA if domain == "xa" else XB)
    spec.pop("type")
    return SyntheticDataset(**spec).utterances()


def split_of(run: Path, domain: str, run_id: str, which: str = "test") -> tuple[list[str], list[str]]:
    """Paths and true labels of a run's split, from splits/<domain>.csv."""
    by_id = {u.id: u for u in utterances(domain)}
    with open(run / "splits" / f"{domain}.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r[run_id] == which]
    return [by_id[r["id"]].path for r in rows], [r["label"] for r in rows]


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_default_checkpoint_has_the_best_mean_val_ua(run: Path) -> None:
    from serkit.inference import load_model

    res = results(run)
    scores = {r["id"]: np.mean([m["ua"] for m in r["val"].values()]) for r in res["runs"]}
    assert sorted(scores) == ["r0-f0", "r0-f1"]
    model = load_model(run)
    assert model.checkpoint == max(scores, key=lambda k: scores[k])
    assert model.domains == ["xa", "xb"]
    assert model.labels("xa") == ["angry", "neutral", "sad"]
    assert model.labels("xb") == ["angry", "happy", "sad"]
    assert not model.network.training


@pytest.mark.parametrize("run_id", ["r0-f0", "r0-f1"])
def test_predictions_reproduce_the_reported_test_accuracy(run: Path, run_id: str) -> None:
    from serkit.inference import load_model

    model = load_model(run, checkpoint=run_id)
    reported = next(r for r in results(run)["runs"] if r["id"] == run_id)["test"]
    for domain in ("xa", "xb"):
        paths, truth = split_of(run, domain, run_id)
        preds = model.predict(paths, domain, batch_size=5)
        assert [p.source for p in preds] == paths
        correct = sum(p.label == t for p, t in zip(preds, truth, strict=True))
        assert reported[domain]["n"] == len(paths)
        assert correct == round(reported[domain]["wa"] * len(paths))
        assert correct / len(paths) == pytest.approx(reported[domain]["wa"], abs=1e-12)
        for p in preds:
            assert p.domain == domain and p.windows is None
            assert list(p.probabilities) == model.labels(domain)
            assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-9)
            assert p.label == max(p.probabilities, key=lambda k: p.probabilities[k])


def test_logits_and_embeddings_match_a_model_rebuilt_by_hand(run: Path) -> None:
    import torch

    from serkit.config.recipe import validate_recipe_data
    from serkit.data.audio import load_audio
    from serkit.engine.checkpoint import load_weights
    from serkit.engine.data import StreamInfo, collate
    from serkit.engine.model import build_model
    from serkit.inference import load_model
    from serkit.plugins import get_registry

    model = load_model(run, checkpoint="r0-f1")
    info = json.loads((run / "checkpoints" / "model.json").read_text())
    recipe = validate_recipe_data(info["recipe"])
    streams = [StreamInfo(**s) for s in info["streams"]]
    registry = get_registry()
    net = build_model(recipe, registry, streams, info["labels"], info["head_of"])
    net.load_state_dict(load_weights(run / "checkpoints" / "r0-f1.safetensors"))
    net.eval()
    ext = registry.create("extractor", recipe.features["mfcc"].extractor)
    paths, _ = split_of(run, "xb", "r0-f1")
    paths = paths[:6]
    wavs = [load_audio(p, 16000) for p in paths]
    batch = collate([({"mfcc": ext.extract(w)}, 0, i) for i, w in enumerate(wavs)], "xb")
    with torch.no_grad():
        logits, fused = net(batch)
    np.testing.assert_allclose(model.logits(paths, "xb", batch_size=4), logits.numpy(), rtol=0, atol=1e-5)
    emb = model.embed(paths, "xb")
    assert emb.shape == (6, int(net.fusion.out_dim))
    np.testing.assert_allclose(emb, fused.representation.numpy(), rtol=0, atol=1e-5)
    # waveforms give the same result as their files; other rates are resampled
    np.testing.assert_allclose(model.logits(wavs, "xb", sample_rate=16000), logits.numpy(), rtol=0, atol=1e-5)
    from serkit.data.audio import resample

    w8k = resample(wavs[0], 16000, 8000)
    p8k = model.predict(w8k, "xb", sample_rate=8000)  # one input: one prediction
    assert p8k.source == "<array 0>"
    direct = model.predict(resample(w8k, 8000, 16000), "xb", sample_rate=16000)
    assert p8k.probabilities == pytest.approx(direct.probabilities, abs=1e-6)
    # a waveform's rate cannot be guessed: a 48 kHz array read as 16 kHz would silently change the result
    with pytest.raises(AudioError) as err:
        model.predict(resample(wavs[0], 16000, 48000), "xb")
    assert str(err.value) == (
        "<array 0>: pass sample_rate= with waveforms (the rate they were recorded or loaded at; the model's "
        "extractors use 16000 Hz, and other rates are resampled)"
    )
    p48k = model.predict(resample(wavs[0], 16000, 48000), "xb", sample_rate=48000)
    native = model.predict(paths[0], "xb")  # the same audio, up- and down-sampled: close, not bit-equal
    assert p48k.label == native.label and p48k.probabilities == pytest.approx(native.probabilities, abs=0.05)


def test_windows_average_to_the_file_probabilities(run: Path) -> None:
    from serkit.data.audio import load_audio
    from serkit.inference import load_model

    model = load_model(run)
    path = split_of(run, "xa", model.checkpoint)[0][0]
    wav = load_audio(path, 16000)
    duration = len(wav) / 16000
    pred = model.predict(path, "xa", window_seconds=0.5, hop_seconds=0.25, batch_size=3)
    assert pred.windows is not None
    starts = [w.start for w in pred.windows]
    # windows start every 0.25 s until one reaches the end of the file
    n = int(np.ceil((duration - 0.5) / 0.25)) + 1
    assert starts == pytest.approx([0.25 * k for k in range(n)])
    assert pred.windows[-1].end == pytest.approx(duration, abs=1e-6)
    assert all(w.end - w.start == pytest.approx(0.5) for w in pred.windows[:-1])
    mean = np.mean([list(w.probabilities.values()) for w in pred.windows], axis=0)
    np.testing.assert_allclose(list(pred.probabilities.values()), mean, atol=1e-12)
    assert pred.label == model.labels("xa")[int(np.argmax(mean))]
    # each window is the prediction of that slice of audio
    w1 = pred.windows[1]
    alone = model.predict(wav[round(w1.start * 16000) : round(w1.end * 16000)], "xa", sample_rate=16000)
    assert w1.probabilities == pytest.approx(alone.probabilities, abs=1e-5)  # float32 batch padding
    # a window longer than the file: one window, equal to the whole-file prediction
    whole = model.predict(path, "xa", window_seconds=60.0)
    assert len(whole.windows or []) == 1
    assert whole.probabilities == pytest.approx(model.predict(path, "xa").probabilities, abs=1e-9)
    # a list of one gives a list of one
    (listed,) = model.predict([path], "xa")
    assert listed == model.predict(path, "xa")


def test_domain_is_required_with_several_domains(run: Path) -> None:
    from serkit.inference import load_model

    model = load_model(run)
    path = split_of(run, "xa", model.checkpoint)[0][0]
    with pytest.raises(ModelError) as err:
        model.predict(path)
    assert str(err.value) == "the model has several domains; pass domain= one of: xa, xb"
    with pytest.raises(ModelError) as err:
        model.embed(path, "zz")
    assert str(err.value) == "unknown domain 'zz'; the model's domains: xa, xb"


def test_the_cli_names_its_domain_option(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from serkit.testing.cli import run_cli

    path = split_of(run, "xa", "r0-f0")[0][0]
    assert run_cli(["predict", "--run", str(run), path]) == 2
    assert capsys.readouterr().err == f"error: {run}: the model has several domains; pass --domain, one of: xa, xb\n"
    assert run_cli(["predict", "--run", str(run), "--domain", "zz", path]) == 2
    assert capsys.readouterr().err == f"error: --domain zz: not a domain of {run}; its domains: xa, xb\n"


def test_bad_audio_raises_or_is_skipped(run: Path, tmp_path: Path) -> None:
    from serkit.inference import load_model

    model = load_model(run)
    good = split_of(run, "xa", model.checkpoint)[0][0]
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioError) as err:
        model.predict([good, str(silent)], "xa")
    assert str(err.value) == f"{silent}: audio is all zeros (digital silence)"
    bad: list[tuple[str, str]] = []
    preds = model.predict([str(silent), good], "xa", bad=bad)
    assert [p.source for p in preds] == [good]
    assert bad == [(str(silent), f"{silent}: audio is all zeros (digital silence)")]
    with pytest.raises(AudioError, match=r"<array 0>: expected a 1-D waveform, got shape \(2, 3, 4\)"):
        model.predict([np.zeros((2, 3, 4), np.float32)], "xa", sample_rate=16000)
    assert model.predict(str(silent), "xa", bad=bad) is None  # one bad input, skipped


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run / "checkpoints", dest / "checkpoints")
    shutil.copy(run / "results.json", dest / "results.json")
    return dest


def test_unknown_and_tampered_checkpoints(run: Path, tmp_path: Path) -> None:
    from serkit.inference import load_model

    with pytest.raises(ModelError) as err:
        load_model(run, checkpoint="r9-f9")
    assert str(err.value) == f"unknown checkpoint 'r9-f9' in {run / 'checkpoints'}; available: r0-f0, r0-f1"

    copy = copy_run(run, tmp_path)
    ckpt = copy / "checkpoints" / "r0-f0.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[8:12] = b"\xff\xfe\x00!"  # the JSON header right after its 8-byte length
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ModelError) as err:  # the SHA-256 written with the checkpoint catches it first
        load_model(copy, checkpoint="r0-f0")
    assert str(err.value).startswith(f"{ckpt}: the checkpoint does not match the SHA-256 written when it was saved")
    (copy / "checkpoints" / "r0-f0.safetensors.sha256").unlink()  # as written by serkit before checksums
    with pytest.raises(ModelError) as err:
        load_model(copy, checkpoint="r0-f0")
    assert str(err.value).startswith(f"{ckpt}: not a valid safetensors checkpoint (")

    # a valid file with a missing and an unexpected tensor
    from safetensors.torch import load_file, save_file

    other = copy / "checkpoints" / "r0-f1.safetensors"
    tensors = load_file(other)
    tensors["extra.weight"] = tensors.pop("heads.xa.layers.0.weight")
    save_file(tensors, other)
    (copy / "checkpoints" / "r0-f1.safetensors.sha256").unlink()
    with pytest.raises(ModelError) as err:
        load_model(copy, checkpoint="r0-f1")
    assert str(err.value) == (
        f"{other}: weights do not fit the model (missing heads.xa.layers.0.weight; unexpected extra.weight)"
    )


def test_missing_component_is_named(run: Path, tmp_path: Path) -> None:
    from serkit.inference import load_model

    copy = copy_run(run, tmp_path)
    model_json = copy / "checkpoints" / "model.json"
    info = json.loads(model_json.read_text())
    info["recipe"]["fusion"] = {"type": "fancy_fusion"}
    info["recipe"]["domains"]["xa"]["dataset"] = {"type": "swahili_corpus", "root": "/nowhere"}
    model_json.write_text(json.dumps(info))
    with pytest.raises(ModelError) as err:
        load_model(copy)
    assert str(err.value) == (
        f"{model_json}: the model needs components that are not registered here:\n"
        "  fusion: fusion 'fancy_fusion'\n"
        "install the plugin(s) that provide them ('serkit plugins' lists what is installed)"
    )
    # a dataset plugin is not needed to predict
    info["recipe"]["fusion"] = json.loads((run / "checkpoints" / "model.json").read_text())["recipe"]["fusion"]
    model_json.write_text(json.dumps(info))
    assert load_model(copy).domains == ["xa", "xb"]


def test_cli_json_and_csv_match_the_api(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from serkit.cli.predict_cmd import predict
    from serkit.inference import load_model

    model = load_model(run)
    paths = split_of(run, "xb", model.checkpoint)[0][:4]
    folder = tmp_path / "clips" / "sub"
    folder.mkdir(parents=True)
    for i, p in enumerate(paths):
        shutil.copy(p, folder / f"c{i}.wav")
    (folder / "notes.txt").write_text("not audio")
    files = [str(folder / f"c{i}.wav") for i in range(len(paths))]
    api = model.predict(files, "xb")

    predict.main(["--run", str(run), "--domain", "xb", str(tmp_path / "clips")], standalone_mode=False)
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == files
    for r, p in zip(rows, api, strict=True):
        assert r["domain"] == "xb" and r["label"] == p.label
        assert r["probabilities"] == pytest.approx(p.probabilities, abs=1e-6)

    out = tmp_path / "out.csv"
    predict.main(
        ["--run", str(run), "--domain", "xb", "--format", "csv", "-o", str(out), *files], standalone_mode=False
    )
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(table[0]) == ["file", "domain", "label", "p_angry", "p_happy", "p_sad"]
    for r, p in zip(table, api, strict=True):
        assert r["file"] == p.source and r["label"] == p.label
        assert float(r["p_happy"]) == pytest.approx(p.probabilities["happy"], abs=1e-6)

    # per-window rows, and a bad file skipped with --skip-bad
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....not a wav")
    predict.main(
        [
            "--run",
            str(run),
            "--domain",
            "xb",
            "--format",
            "csv",
            "--window",
            "0.6",
            "--per-window",
            "--skip-bad",
            files[0],
            str(broken),
        ],
        standalone_mode=False,
    )
    captured = capsys.readouterr()
    assert f"skipped {broken}: {broken}: not a readable audio file" in captured.err
    table = list(csv.DictReader(io.StringIO(captured.out)))
    windowed = model.predict(files[0], "xb", window_seconds=0.6)
    assert windowed.windows is not None
    assert len(table) == 1 + len(windowed.windows)
    assert table[0]["start"] == "" and table[0]["label"] == windowed.label
    assert [float(r["start"]) for r in table[1:]] == pytest.approx([w.start for w in windowed.windows])
    with pytest.raises(AudioError, match="not a readable audio file"):
        predict.main(["--run", str(run), "--domain", "xb", str(broken)], standalone_mode=False)


def test_export_is_self_contained_and_checksummed(run: Path, tmp_path: Path) -> None:
    import shutil

    from serkit.errors import ModelError
    from serkit.export import export_model
    from serkit.inference import load_model

    out = export_model(run, tmp_path / "exported", checkpoint="r0-f1")
    moved = tmp_path / "elsewhere"
    shutil.move(str(out), moved)  # another place (no link to the run folder)
    paths, _ = split_of(run, "xa", "r0-f1")
    original = load_model(run, checkpoint="r0-f1").logits(paths[:6], domain="xa")
    exported = load_model(moved)
    assert exported.checkpoint == "r0-f1"
    np.testing.assert_array_equal(exported.logits(paths[:6], domain="xa"), original)
    weights = moved / "checkpoints" / "r0-f1.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        load_model(moved)
    assert str(info.value) == (
        f"{moved}: checkpoints/r0-f1.safetensors does not match its SHA-256 in export.json; refusing a modified model"
    )
    with pytest.raises(ModelError, match="exists and is not empty"):
        export_model(run, moved)
