"""Predefined and cross-corpus protocols: split logic and end-to-end runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from serkit.config.recipe import validate_recipe_data
from serkit.data.splits import holdout_split, predefined_splits, speaker_folds
from serkit.data.utterance import Utterance
from serkit.engine.prepare import DomainData, plan_splits
from serkit.errors import DatasetError
from serkit.testing.cli import run_cli


def test_predefined_fold_column_is_cross_validation() -> None:
    labels = ["a", "b"] * 6
    meta = [{"fold": str(i % 3)} for i in range(12)]
    out = predefined_splits(labels, meta, column="auto", val=0.25, seed=0)
    assert [name for name, _ in out] == ["fold=0", "fold=1", "fold=2"]
    for name, s in out:
        v = name.split("=")[1]
        assert set(s.test) == {i for i in range(12) if str(i % 3) == v}
        assert not set(s.val) & set(s.train) and not set(s.test) & (set(s.train) | set(s.val))
        assert len(s.val) == 2  # 25% of 8, stratified: one per label
        assert {labels[i] for i in s.val} == {"a", "b"}


def test_predefined_split_column() -> None:
    labels = ["a", "b"] * 5
    roles = ["train"] * 6 + ["valid", "test", "test", "dev"]
    s = predefined_splits(labels, [{"split": r} for r in roles])[0][1]
    assert (s.train, s.val, s.test) == ((0, 1, 2, 3, 4, 5), (6, 9), (7, 8))
    no_val = predefined_splits(labels, [{"split": r} for r in ["train"] * 8 + ["test"] * 2], val=0.25)[0][1]
    assert len(no_val.val) == 2 and set(no_val.test) == {8, 9}


def test_predefined_errors() -> None:
    with pytest.raises(DatasetError) as info:
        predefined_splits(["a", "b"], [{"split": "train"}, {}])
    assert str(info.value) == (
        "protocol predefined: 1 utterance(s) have no 'split' value (e.g. position 1); "
        "the manifest needs a 'split' column on every row"
    )
    with pytest.raises(DatasetError, match=r"unknown split value\(s\) \['holdout'\]"):
        predefined_splits(["a", "b"], [{"split": "train"}, {"split": "holdout"}])


def test_holdout_split_has_no_test() -> None:
    s = holdout_split(["a", "b"] * 10, val=0.2, seed=1)
    assert s.test == () and len(s.val) == 4 and len(s.train) == 16


FEATS = """\
features:
  mfcc: {extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}, encoder: {type: mean_pool, stats: true}}
heads: {default: {type: mlp, hidden: [32]}}
train: {epochs: 3, batch_size: 16}
"""


def test_predefined_run_reproduces_the_manifest_folds(tmp_path: Path) -> None:
    from serkit.builtin.datasets.synthetic import SyntheticDataset

    utts = SyntheticDataset(languages=["xa"], speakers=6, per_class=3, root=str(tmp_path / "syn")).utterances()
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker", "fold"])
        for i, u in enumerate(utts):
            w.writerow([u.path, u.label, u.speaker, i % 2])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: pre\nprotocol: predefined\ndomains: {{xa: {{dataset: {{type: manifest, path: '{manifest}'}}}}}}\n"
        + FEATS
    )
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["protocol"] == "predefined" and res["n_runs"] == 2
    rows = list(csv.DictReader((out / "splits" / "xa.csv").open()))
    fold_of = {Path(u.path).with_suffix("").as_posix(): i % 2 for i, u in enumerate(utts)}
    for r in rows:
        assert r[f"r0-f{fold_of[r['id']]}"] == "test"


def test_cross_lingual_run_tests_only_the_target_on_shared_labels(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: cross\n"
        "protocol: {type: cross_lingual, test: [xb]}\n"
        "domains:\n"
        "  xa: {dataset: {type: synthetic, languages: [xa], speakers: 4, per_class: 6}}\n"
        "  xb: {dataset: {type: synthetic, languages: [xb], speakers: 4, per_class: 6, emotions: [angry, sad, fear]},"
        " head: xa}\n" + FEATS
    )
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["domains"]) == ["xb"]
    xb = res["domains"]["xb"]
    assert xb["labels"] == ["angry", "sad"] and xb["n_test"] == 4 * 6 * 2
    rows = list(csv.DictReader((out / "splits" / "xa.csv").open()))
    assert {r["r0-f0"] for r in rows} == {"train", "val"}
    rows_b = list(csv.DictReader((out / "splits" / "xb.csv").open()))
    assert {r["r0-f0"] for r in rows_b} == {"test"}


def test_cross_lingual_needs_a_trained_head(tmp_path: Path) -> None:
    from serkit.config.recipe import load_recipe
    from serkit.errors import RecipeError

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: cross\nprotocol: {type: cross_lingual, test: [xb, zz]}\n"
        "domains:\n  xa: {dataset: {type: synthetic}}\n  xb: {dataset: {type: synthetic, languages: [xb]}}\n" + FEATS
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    assert [(p, m) for p, _, m in info.value.problems] == [
        ("protocol.test", "unknown domain(s) ['zz']; domains: xa, xb"),
        ("domains.xb.head", "test-only domain 'xb' needs a trained head: set it to a training domain's head (xa)"),
    ]


def test_few_shot_draws_k_per_class_deterministically() -> None:
    from serkit.data.splits import few_shot

    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 6
    idx = list(range(len(labels)))
    shots = few_shot(idx, labels, 5, seed=1)
    counts = {lab: sum(labels[i] == lab for i in shots) for lab in "abc"}
    assert counts == {"a": 5, "b": 3, "c": 5}
    assert few_shot(idx, labels, 5, seed=1) == shots
    assert few_shot(idx, labels, 5, seed=2) != shots
    assert set(few_shot(idx[:12], labels, 2, seed=0)) <= set(idx[:12])
    with pytest.raises(DatasetError, match="shots must be at least 1, got 0"):
        few_shot(idx, labels, 0)


def test_shots_limit_training_and_leave_test_untouched(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    base = (
        "name: shots\nprotocol: {type: speaker, k: 3, folds: [0]}\nrepeats: 2\n"
        "domains:\n  xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 6}SHOTS}\n" + FEATS
    )
    recipe.write_text(base.replace("SHOTS", ", shots: 2"))
    full = tmp_path / "full.yaml"
    full.write_text(base.replace("SHOTS", ""))
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert run_cli(["run", str(full), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    few = list(csv.DictReader((tmp_path / "a" / "splits" / "xa.csv").open()))
    all_ = list(csv.DictReader((tmp_path / "b" / "splits" / "xa.csv").open()))
    for run_id in ("r0-f0", "r1-f0"):
        train = [r for r in few if r[run_id] == "train"]
        assert sorted({r["label"] for r in train}) == ["angry", "happy", "neutral", "sad"]
        assert all(sum(r["label"] == lab for r in train) == 2 for lab in ("angry", "happy", "neutral", "sad"))
        assert [r["id"] for r in few if r[run_id] == "test"] == [r["id"] for r in all_ if r[run_id] == "test"]
    draws = [{r["id"] for r in few if r[rid] == "train"} for rid in ("r0-f0", "r1-f0")]
    assert draws[0] != draws[1]


SPEAKERS = [f"s{s:02d}" for s in range(12)]


def _speaker_sets(reshuffle: bool) -> dict[str, dict[str, set[str]]]:
    """Run id -> set name -> its speakers, for a 3-repeat, 4-fold speaker protocol on 12 equal speakers."""
    r = validate_recipe_data(
        {
            "name": "folds",
            "seed": 0,
            "repeats": 3,
            "protocol": {"type": "speaker", "k": 4, "reshuffle": reshuffle},
            "domains": {"xa": {"dataset": {"type": "manifest", "path": "m.csv", "check_files": False}}},
            "features": {"m": {"extractor": {"type": "mfcc"}, "encoder": {"type": "mean_pool"}}},
        }
    )
    labels = ["angry", "sad"]
    utts = [Utterance(f"{spk}-{i}", f"/x/{spk}/{i}.wav", labels[i % 2], spk) for spk in SPEAKERS for i in range(4)]
    _, splits = plan_splits(r, {"xa": DomainData(utts, labels, {})}, {"xa": labels})
    return {
        run: {name: {utts[i].speaker for i in getattr(s, name)} for name in ("train", "val", "test")}
        for run, s in splits["xa"].items()
    }


def test_speaker_repeats_draw_a_new_partition_each_unless_told_not_to() -> None:
    for reshuffle in (True, False):
        sets = _speaker_sets(reshuffle)
        partitions = []
        for r in range(3):
            tests = [frozenset(sets[f"r{r}-f{f}"]["test"]) for f in range(4)]
            assert sorted(s for t in tests for s in t) == SPEAKERS  # a partition
            for f in range(4):
                spk = sets[f"r{r}-f{f}"]
                assert not (spk["train"] & spk["val"] or spk["train"] & spk["test"] or spk["val"] & spk["test"])
            partitions.append(frozenset(tests))
        if reshuffle:  # repeated k-fold: repeat r partitions with seed + r
            assert len(set(partitions)) == 3
            expected = speaker_folds([s for s in SPEAKERS for _ in range(4)], 4, seed=1)
            assert partitions[1] == frozenset(frozenset(fold) for fold in expected)
        else:
            assert len(set(partitions)) == 1
