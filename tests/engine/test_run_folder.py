"""One run per run folder (--out, --resume, --overwrite), checksummed checkpoints, no stubs, early checks.

Each test reproduces a fault a user hit (issue 17) and shows it cannot happen any more.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serkit.errors import DatasetError, ModelError, SerkitError
from serkit.testing.cli import run_cli

RECIPE = """\
name: tiny
seed: 0
protocol: {type: speaker, k: 3}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 3, emotions: [angry, neutral, sad]}}
features:
  mfcc:
    extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}
    encoder: {type: mean_pool, stats: true}
heads:
  default: {type: mlp, hidden: [16], activations: [relu], dropout: 0.2}
train: {epochs: 2, batch_size: 8}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Path:
    """A finished 3-fold run (read-only for the tests: copy it to change it)."""
    from serkit.testing.cli import run_recipe_isolated

    return run_recipe_isolated(RECIPE, tmp_path_factory.mktemp("run-folder"), session_cache)


def recipe_file(folder: Path, text: str = RECIPE) -> Path:
    path = folder / "r.yaml"
    path.write_text(text)
    return path


def unfinished_copy(run: Path, tmp_path: Path) -> Path:
    """A copy of the finished run with its last run (r0-f2) and its results removed: a run to resume."""
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "results.json").unlink()
    (copy / "runs" / "r0-f2.json").unlink()
    return copy


def error_of(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_out_refuses_a_folder_holding_a_run(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert run_cli(["run", str(recipe_file(tmp_path)), "--out", str(run), "--quiet"]) == 2
    assert error_of(capsys) == (
        f"error: {run}: the run folder is not empty (a finished run with 3 run(s)); pass --resume "
        f"(serkit run --resume {run}) to continue the run in it with the same recipe, --overwrite to delete "
        "its runs, checkpoints and results first, or choose another --out\n"
    )
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before  # untouched
    # a folder that is not a run folder is never cleared
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert run_cli(["run", str(recipe_file(tmp_path)), "--out", str(other), "--overwrite", "--quiet"]) == 2
    assert "--overwrite only clears serkit run folders" in error_of(capsys)
    assert (other / "notes.txt").read_text() == "keep me"


def test_overwrite_leaves_no_stale_checkpoint(run: Path, tmp_path: Path) -> None:
    from serkit.inference import load_model

    copy = shutil.copytree(run, tmp_path / "run")
    recipe = recipe_file(tmp_path)
    assert run_cli(["run", str(recipe), "--out", str(copy), "--set", "protocol.k=2", "--overwrite", "--quiet"]) == 0
    assert sorted(p.name for p in (copy / "checkpoints").glob("*.safetensors")) == [
        "r0-f0.safetensors",
        "r0-f1.safetensors",
    ]
    assert sorted(p.name for p in (copy / "runs").iterdir()) == ["r0-f0.json", "r0-f1.json"]
    assert json.loads((copy / "results.json").read_text())["n_runs"] == 2
    with pytest.raises(ModelError) as err:
        load_model(copy, checkpoint="r0-f2")
    assert str(err.value) == f"unknown checkpoint 'r0-f2' in {copy / 'checkpoints'}; available: r0-f0, r0-f1"
    # a checkpoint file of another run put back by hand is not offered either
    shutil.copy(run / "checkpoints" / "r0-f2.safetensors", copy / "checkpoints")
    with pytest.raises(ModelError, match="unknown checkpoint 'r0-f2'"):
        load_model(copy, checkpoint="r0-f2")


def test_resume_refuses_another_recipe_listing_every_change(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = unfinished_copy(run, tmp_path)
    changed = recipe_file(tmp_path, RECIPE.replace("epochs: 2", "epochs: 1").replace("hidden: [16]", "hidden: [8]"))
    args = ["run", str(changed), "--resume", str(copy), "--set", "data.extract_workers=0", "--quiet"]
    assert run_cli(args) == 2
    assert error_of(capsys) == (
        f"error: --resume {copy}: the recipe differs from the one that started this run in 2 field(s):\n"
        "  heads.default.hidden: [16] -> [8]\n"
        "  train.epochs: 2 -> 1\n"
        "a resumed run must compute the same thing; run the changed recipe into another --out (or start over "
        "here with --overwrite)\n"
    )
    # the same through the run folder's own recipe.yaml, edited
    text = (copy / "recipe.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (copy / "recipe.yaml").write_text(text)
    assert run_cli(["run", "--resume", str(copy), "--quiet"]) == 2
    assert "in 1 field(s):\n  train.epochs: 2 -> 3\n" in error_of(capsys)
    assert not (copy / "runs" / "r0-f2.json").exists() and not (copy / "results.json").exists()


def test_resume_refuses_splits_other_than_those_the_run_started_with(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = unfinished_copy(run, tmp_path)
    splits = copy / "splits" / "xa.csv"
    rows = splits.read_text().splitlines()
    header = rows[0].split(",")
    j = header.index("r0-f1")
    first = next(i for i, r in enumerate(rows[1:], start=1) if r.split(",")[j] == "train")
    cells = rows[first].split(",")
    cells[j] = "val"  # as if serkit had drawn another validation speaker when the run started
    rows[first] = ",".join(cells)
    splits.write_text("\n".join(rows) + "\n")
    assert run_cli(["run", "--resume", str(copy), "--quiet"]) == 2
    assert error_of(capsys).splitlines(keepends=True)[-1] == (
        f"error: --resume {copy}: the splits of domain 'xa' differ from those this run started with ({splits}): "
        "the roles of utterances differ in run(s) r0-f1. The corpus or serkit's split rules changed since; "
        "finished and new runs would not be comparable. Run into another --out (or start over here with "
        "--overwrite)\n"
    )
    assert not (copy / "runs" / "r0-f2.json").exists() and "val" in splits.read_text().splitlines()[first]


def test_interrupted_then_resumed_run_reports_the_whole_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import serkit.engine.train as train

    monkeypatch.setenv("SERKIT_CACHE", str(tmp_path / "cache"))  # features computed by this test
    real = train.train_run
    calls = []

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_run", interrupted)
    out = tmp_path / "run"
    recipe = recipe_file(tmp_path)
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 130
    state = json.loads((out / "serkit-run.json").read_text())
    assert [s["status"] for s in state["sessions"]] == ["interrupted"]
    first = state["sessions"][0]
    assert first["extraction"]["mfcc"]["computed"] == 54 and first["extraction"]["mfcc"]["cached"] == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["r0-f0.json", "r0-f1.json"]

    monkeypatch.setattr(train, "train_run", real)
    assert run_cli(["run", str(recipe), "--resume", str(out), "--quiet"]) == 0
    capsys.readouterr()
    state = json.loads((out / "serkit-run.json").read_text())
    assert [s["status"] for s in state["sessions"]] == ["interrupted", "finished"]
    assert [s["resumed"] for s in state["sessions"]] == [False, True]
    results = json.loads((out / "results.json").read_text())
    assert results["n_runs"] == 3
    mfcc = results["extraction"]["mfcc"]
    assert (mfcc["computed"], mfcc["cached"], mfcc["failed"], mfcc["sessions"]) == (54, 0, 0, 2)
    total = sum(s["seconds"] for s in state["sessions"])
    assert results["wall_seconds"] == pytest.approx(total, abs=0.02)
    assert results["wall_seconds"] > state["sessions"][1]["seconds"]
    assert "| mfcc | 54 | 0 | 0 |" in (out / "report.md").read_text()


def test_tampered_checkpoint_is_refused_everywhere(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serkit.export import export_model
    from serkit.inference import load_model

    copy = shutil.copytree(run, tmp_path / "run")
    ckpt = copy / "checkpoints" / "r0-f0.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[-4096:] = bytes(b ^ 0x5A for b in data[-4096:])  # 4 KiB of weights flipped
    ckpt.write_bytes(bytes(data))
    digest = (copy / "checkpoints" / "r0-f0.safetensors.sha256").read_text().split()[0]
    with pytest.raises(ModelError) as err:
        load_model(copy, checkpoint="r0-f0")
    assert str(err.value).startswith(
        f"{ckpt}: the checkpoint does not match the SHA-256 written when it was saved "
        f"(r0-f0.safetensors.sha256: {digest[:12]}..., file: "
    )
    with pytest.raises(ModelError, match="does not match the SHA-256"):
        export_model(copy, tmp_path / "exported", checkpoint="r0-f0")
    assert not (tmp_path / "exported").exists()
    wav = _a_wav(tmp_path)
    assert run_cli(["predict", "--run", str(copy), "--checkpoint", "r0-f0", str(wav)]) == 2
    assert f"error: {ckpt}: the checkpoint does not match the SHA-256" in error_of(capsys)
    # --resume checks the finished runs' checkpoints before anything runs
    (copy / "results.json").unlink()
    assert run_cli(["run", "--resume", str(copy), "--quiet"]) == 2
    assert f"error: {ckpt}: the checkpoint does not match the SHA-256" in error_of(capsys)
    # the untouched checkpoints still load
    assert load_model(run, checkpoint="r0-f0").checkpoint == "r0-f0"


def _a_wav(folder: Path) -> Path:
    import numpy as np
    import soundfile as sf

    path = folder / "clip.wav"
    t = np.arange(16000) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return path


def test_a_failed_run_leaves_no_stub_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import serkit.engine.train as train

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SerkitError("training failed")

    monkeypatch.setattr(train, "train_run", broken)
    recipe = recipe_file(tmp_path)
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "new"), "--quiet"]) == 2
    assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["run", str(recipe), "--out", str(empty), "--quiet"]) == 2
    assert list(empty.iterdir()) == []  # a folder that existed stays, emptied of what the run wrote


def test_protocol_problems_stop_the_run_before_feature_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import serkit.features.driver as driver

    def no_extraction(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("features were extracted")

    monkeypatch.setattr(driver, "extract_features", no_extraction)
    recipe = recipe_file(tmp_path, RECIPE.replace("k: 3", "k: 7"))
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert error_of(capsys) == "error: domains.xa: k=7 speaker folds but only 6 speakers; use k <= 6 or k: all\n"
    assert not (tmp_path / "run").exists()

    # a folder dataset without speaker_regex: every file is speaker 'unknown'
    _folder_corpus(tmp_path / "corpus")
    text = RECIPE.replace(
        "{dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 3, emotions: [angry, neutral, sad]}}",
        f"{{dataset: {{type: folder, root: {tmp_path / 'corpus'}}}}}",
    )
    assert run_cli(["run", str(recipe_file(tmp_path, text)), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert error_of(capsys) == (
        "error: domains.xa: speaker-independent folds need at least 2 speakers; found 1 (unknown) "
        "(a folder dataset needs speaker_regex to tell speakers apart)\n"
    )
    with pytest.raises(DatasetError):
        from serkit.config.recipe import load_recipe
        from serkit.engine.precheck import check_protocol
        from serkit.engine.prepare import load_domains

        rec, _ = load_recipe(recipe_file(tmp_path, text))
        check_protocol(rec, load_domains(rec))


def _folder_corpus(root: Path) -> None:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    for label in ("angry", "sad"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            sf.write(root / label / f"s{i}_{label}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)


def test_disk_full_in_the_run_folder_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno
    import os

    import serkit.io as io

    out = tmp_path / "run"
    real = os.fsync

    def full(fd: int) -> None:
        if str(out) in os.readlink(f"/proc/self/fd/{fd}") and "results.json" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(io.os, "fsync", full)
    assert run_cli(["run", str(recipe_file(tmp_path)), "--out", str(out), "--quiet"]) == 2
    assert error_of(capsys).splitlines()[-1] == (
        f"error: cannot write {out / 'results.json'}: No space left on device (free some space or write elsewhere)"
    )
    # the finished runs are kept for --resume, and no temporary file is left behind
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["r0-f0.json", "r0-f1.json", "r0-f2.json"]
    assert not list(out.glob(".results.json.*"))
    monkeypatch.setattr(io.os, "fsync", real)
    assert run_cli(["run", "--resume", str(out), "--quiet"]) == 0
    assert json.loads((out / "results.json").read_text())["n_runs"] == 3


def test_a_run_recomputes_a_corrupt_cached_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    monkeypatch.setenv("SERKIT_CACHE", str(tmp_path / "cache"))
    recipe = recipe_file(tmp_path, RECIPE.replace("k: 3", "k: 3, folds: [0]").replace("epochs: 2", "epochs: 1"))
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    (store,) = (tmp_path / "cache" / "features").glob("mfcc-*.sqlite")
    with sqlite3.connect(store) as conn:
        key, blob = conn.execute("SELECT key, data FROM features ORDER BY key LIMIT 1").fetchone()
        flipped = bytearray(blob)
        flipped[3] ^= 0xFF
        conn.execute("UPDATE features SET data = ? WHERE key = ?", (bytes(flipped), key))
    capsys.readouterr()
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert (
        f"warning: {store}: 1 stored item(s) were corrupt (checksum mismatch); they are computed again"
        in capsys.readouterr().err.splitlines()
    )
    mfcc = json.loads((tmp_path / "b" / "results.json").read_text())["extraction"]["mfcc"]
    assert (mfcc["computed"], mfcc["cached"]) == (1, 53)
