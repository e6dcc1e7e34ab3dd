"""Prediction with runs trained with ``data.speaker_norm`` (per-speaker standardisation)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serkit.errors import ModelError, SerkitError

XA = "{type: synthetic, languages: [xa], speakers: 6, per_class: 4, emotions: [angry, neutral, sad]}"
RECIPE = f"""\
name: spknorm
seed: 0
protocol: {{type: speaker, k: 3, folds: [0, 1]}}
domains:
  xa: {{dataset: {XA}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 13, hop_ms: 20}}
    encoder: {{type: mean_pool, stats: true}}
heads:
  default: {{type: mlp, hidden: [32], activations: [relu], dropout: 0.2}}
train: {{epochs: 15, batch_size: 8}}
data: {{speaker_norm: true}}
logging: {{tensorboard: false, mlflow: false}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Iterator[Path]:
    from serkit.testing.cli import run_recipe_isolated

    yield run_recipe_isolated(RECIPE, tmp_path_factory.mktemp("spknorm"), session_cache)


def utterances() -> list:
    import yaml

    from serkit.builtin.datasets.synthetic import SyntheticDataset

    spec = yaml.safe_load(XA)
    spec.pop("type")
    return SyntheticDataset(**spec).utterances()


def split_rows(run: Path, run_id: str, which: str) -> list[dict[str, str]]:
    with open(run / "splits" / "xa.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r[run_id] == which]


def paths_of(rows: list[dict[str, str]]) -> list[str]:
    by_id = {u.id: u.path for u in utterances()}
    return [by_id[r["id"]] for r in rows]


@pytest.mark.parametrize("run_id", ["r0-f0", "r0-f1"])
def test_predictions_reproduce_the_reported_test_accuracy(run: Path, run_id: str) -> None:
    from serkit.inference import load_model

    model = load_model(run, checkpoint=run_id)
    assert model.speaker_norm is not None
    rows = split_rows(run, run_id, "test")
    test_speakers = {r["speaker"] for r in rows}
    # the test speakers are new to this checkpoint: their statistics come from the call
    assert not test_speakers & set(model.speaker_norm.known[run_id]["xa"])
    reported = next(r for r in json.loads((run / "results.json").read_text())["runs"] if r["id"] == run_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 12 files per speaker: no few-files warning
        preds = model.predict(paths_of(rows), "xa", speakers=[r["speaker"] for r in rows], batch_size=5)
    correct = sum(p.label == r["label"] for p, r in zip(preds, rows, strict=True))
    assert reported["test"]["xa"]["n"] == len(rows) == 24
    assert correct == round(reported["test"]["xa"]["wa"] * len(rows))
    assert reported["test"]["xa"]["wa"] > 0.6  # a model that learned (chance 1/3): the check means something
    assert [p.speaker for p in preds] == [r["speaker"] for r in rows]


def test_known_speakers_use_the_stored_statistics_which_equal_their_files(run: Path) -> None:
    from serkit.engine.speaker_norm import StatsAccumulator
    from serkit.inference import load_model

    model = load_model(run, checkpoint="r0-f0")
    norm = model.speaker_norm
    assert norm is not None
    train_rows = split_rows(run, "r0-f0", "train")
    speaker = train_rows[0]["speaker"]
    assert speaker in norm.known["r0-f0"]["xa"]
    own = [u for u in utterances() if u.speaker == speaker]  # every utterance of the speaker, in order
    files = [u.path for u in own]
    acc = StatsAccumulator()
    for u in own:
        from serkit.data.audio import load_audio

        acc.add(speaker, model.extractors["mfcc"].extract(load_audio(u.path, 16000)))
    mean, std = acc.result(norm.eps)[speaker]
    stored = norm.stored("xa", speaker, "r0-f0")
    assert stored is not None
    np.testing.assert_allclose(stored["mfcc"][0], mean, rtol=0, atol=1e-5)
    np.testing.assert_allclose(stored["mfcc"][1], std, rtol=0, atol=1e-5)
    # "auto" (stored) and "call" (this call's files = all of the speaker's) agree
    auto = model.logits(files, "xa", speakers=speaker)
    call = model.logits(files, "xa", speakers=speaker, speaker_stats="call")
    np.testing.assert_allclose(auto, call, rtol=0, atol=1e-5)
    # the same files under another speaker id with fewer of them: other statistics, a warning
    with pytest.warns(UserWarning, match=r"1 speaker\(s\) with fewer than 5 inputs in this call: new \(3\)"):
        few = model.logits(files[:3], "xa", speakers="new")
    assert not np.allclose(few, auto[:3], atol=1e-4)


def test_global_stats_and_errors(run: Path) -> None:
    from serkit.data.audio import load_audio
    from serkit.inference import load_model

    model = load_model(run, checkpoint="r0-f1")
    norm = model.speaker_norm
    assert norm is not None
    feats = np.concatenate([model.extractors["mfcc"].extract(load_audio(u.path, 16000)) for u in utterances()])
    overall = norm.global_stats("xa")["mfcc"]
    np.testing.assert_allclose(overall[0], feats.mean(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(overall[1], feats.std(axis=0), rtol=1e-4, atol=1e-4)
    files = paths_of(split_rows(run, "r0-f1", "test"))[:4]
    preds = model.predict(files, "xa", speaker_stats="global")
    assert len(preds) == 4 and all(p.speaker is None for p in preds)
    rows = split_rows(run, "r0-f1", "test")
    per_speaker = model.logits(paths_of(rows), "xa", speakers=[r["speaker"] for r in rows])
    assert not np.allclose(model.logits(paths_of(rows), "xa", speaker_stats="global"), per_speaker, atol=1e-3)

    with pytest.raises(ModelError) as err:
        model.predict(files, "xa")
    assert str(err.value) == (
        "the model was trained with data.speaker_norm (features standardised per speaker): pass speakers= "
        "(one id per input, or one for all; an unknown speaker's statistics come from its inputs in the call, "
        "so give several files per speaker), or speaker_stats='global' (the domain's overall statistics; "
        "less accurate)"
    )
    with pytest.raises(ModelError, match=r"^speakers: 2 given for 4 input\(s\); give one per input, or one id"):
        model.predict(files, "xa", speakers=["a", "b"])
    with pytest.raises(ModelError, match="speaker_stats must be 'auto', 'call' or 'global'; got 'mean'"):
        model.predict(files, "xa", speakers="a", speaker_stats="mean")  # type: ignore[arg-type]


def test_statistics_equal_training_arithmetic_bit_for_bit() -> None:
    from serkit.engine.speaker_norm import StatsAccumulator, speaker_stats

    rng = np.random.default_rng(0)
    arrays = {f"k{i}": rng.normal(3.0, 2.0, size=(rng.integers(5, 40), 7)).astype(np.float32) for i in range(9)}
    speakers = ["a", "b", "a", "c", "b", "a", "c", "c", "a"]

    class Store:
        def get(self, key: str) -> np.ndarray:
            return arrays[key]

    expected = speaker_stats(list(arrays), speakers, Store())  # type: ignore[arg-type]
    acc = StatsAccumulator()
    for key, spk in zip(arrays, speakers, strict=True):
        acc.add(spk, arrays[key])
    got = acc.result()
    assert sorted(got) == sorted(expected)
    for spk, (mean, std) in expected.items():
        assert np.array_equal(got[spk][0], mean) and np.array_equal(got[spk][1], std)
    # vectors (one per utterance) too
    vec = {f"v{i}": rng.normal(size=5).astype(np.float32) for i in range(4)}
    arrays.update(vec)
    expected = speaker_stats(list(vec), ["s"] * 4, Store())  # type: ignore[arg-type]
    acc = StatsAccumulator()
    for v in vec.values():
        acc.add("s", v)
    assert np.array_equal(acc.result()["s"][1], expected["s"][1])


def test_export_is_self_contained_and_cli_takes_speakers(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serkit.cli.predict_cmd import predict
    from serkit.export import export_model
    from serkit.inference import load_model

    out = export_model(run, tmp_path / "exported", checkpoint="r0-f0")
    moved = tmp_path / "elsewhere"
    shutil.move(str(out), moved)
    manifest = json.loads((moved / "export.json").read_text())
    assert {"checkpoints/speaker_norm.safetensors", "checkpoints/speaker_norm.json"} <= set(manifest["files"])
    rows = split_rows(run, "r0-f0", "test")
    files, speakers = paths_of(rows), [r["speaker"] for r in rows]
    original = load_model(run, checkpoint="r0-f0").logits(files, "xa", speakers=speakers)
    np.testing.assert_array_equal(load_model(moved).logits(files, "xa", speakers=speakers), original)

    # the CLI: one folder per speaker
    for f, spk in zip(files, speakers, strict=True):
        (tmp_path / "clips" / spk).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, tmp_path / "clips" / spk / Path(f).name)
    predict.main(["--run", str(moved), "--speaker-from-dir", str(tmp_path / "clips")], standalone_mode=False)
    by_dir = json.loads(capsys.readouterr().out)
    assert len(by_dir) == len(files)
    assert all(r["speaker"] == Path(r["file"]).parent.name for r in by_dir)
    api_preds = load_model(moved).predict(files, "xa", speakers=speakers)
    api = {Path(f).name: p for f, p in zip(files, api_preds, strict=True)}
    for r in by_dir:
        assert r["label"] == api[Path(r["file"]).name].label
        assert r["probabilities"] == pytest.approx(api[Path(r["file"]).name].probabilities, abs=1e-6)

    # a CSV mapping (file names relative to the CSV) gives the same, with a speaker column
    mapping = tmp_path / "speakers.csv"
    lines = "".join(f"{Path(f).name},{s}\n" for f, s in zip(files, speakers, strict=True))
    mapping.write_text("file,speaker\n" + lines)
    predict.main(["--run", str(moved), "--speakers", str(mapping), "--format", "csv", *files], standalone_mode=False)
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(table[0])[:4] == ["file", "domain", "speaker", "label"]
    assert [r["speaker"] for r in table] == speakers
    assert [r["label"] for r in table] == [api[Path(f).name].label for f in files]

    mapping.write_text("file,speaker\n" + f"{Path(files[0]).name},{speakers[0]}\n")
    with pytest.raises(SerkitError, match=rf"--speakers {mapping}: no speaker for {len(files) - 1} file\(s\): "):
        predict.main(["--run", str(moved), "--speakers", str(mapping), *files], standalone_mode=False)
    with pytest.raises(ModelError, match="pass speakers="):
        predict.main(["--run", str(moved), *files], standalone_mode=False)


def test_a_run_without_stored_statistics_is_refused(run: Path, tmp_path: Path) -> None:
    from serkit.inference import load_model

    copy = tmp_path / "copy"
    shutil.copytree(run / "checkpoints", copy / "checkpoints")
    shutil.copy(run / "results.json", copy / "results.json")
    (copy / "checkpoints" / "speaker_norm.json").unlink()
    with pytest.raises(ModelError) as err:
        load_model(copy)
    assert str(err.value) == (
        f"{copy / 'checkpoints'}: the run was trained with data.speaker_norm but its statistics "
        "(speaker_norm.safetensors, speaker_norm.json) are missing; rerun it with this serkit version to store them"
    )
