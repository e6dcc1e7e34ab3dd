"""Broken corpora: manifests and folders with hostile rows, labels and speakers, and splits that must not leak.

The basic manifest/folder errors are in tests/data/test_datasets.py and the split
invariants on fixed corpora in tests/data/test_splits.py; this file adds the hostile rows
and property-based tests of the speaker protocol over random speaker/label assignments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serkit.builtin.datasets.folder import FolderDataset
from serkit.builtin.datasets.manifest import ManifestDataset
from serkit.config.recipe import validate_recipe_data
from serkit.data.splits import speaker_folds, speaker_split
from serkit.data.utterance import Utterance
from serkit.engine.prepare import DomainData, load_domains, plan_splits
from serkit.errors import DatasetError, RecipeError

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tone(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(4000) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32"), 16000, subtype="PCM_16")
    return path


def error_of(ds: Any) -> str:
    with pytest.raises(DatasetError) as info:
        ds.utterances()
    return str(info.value)


def recipe(dataset: dict[str, Any], protocol: dict[str, Any] | None = None, **more: Any) -> Any:
    data = {
        "name": "hostile",
        "domains": {"xa": {"dataset": dataset}},
        "features": {"m": {"extractor": {"type": "mfcc", "n_mfcc": 13}, "encoder": {"type": "mean_pool"}}},
        **({"protocol": protocol} if protocol else {}),
        **more,
    }
    return validate_recipe_data(data)


# ----------------------------------------------------------------------------- manifests
def test_duplicate_ids_in_a_jsonl_manifest(tmp_path: Path) -> None:
    rows = [
        {"path": f"{n}.wav", "label": "happy", "speaker": "s1", "id": uid}
        for n, uid in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "y"), ("e", "z")]
    ]
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = ManifestDataset(path=str(m), check_files=False)
    assert error_of(ds) == f"manifest {m}: duplicate utterance ids (2): x, y"


def test_the_same_audio_file_on_two_lines(tmp_path: Path) -> None:
    tone(tmp_path / "a.wav")
    m = tmp_path / "m.csv"
    m.write_text("path,label,speaker,id\na.wav,happy,s1,u1\n./a.wav,sad,s2,u2\n")
    assert error_of(ManifestDataset(path=str(m))) == (
        f"manifest {m}: 1 audio file(s) listed on several lines:\n"
        f"  {(tmp_path / 'a.wav').resolve()} (lines 2, 3)\n"
        "each file must be one utterance (one label, one speaker)"
    )


def test_declared_labels_are_mapped_like_the_rows(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("path,label,speaker\na.wav,Wut,s1\nb.wav,neu,s1\nc.wav,bored,s2\nd.wav,Anger,s2\n")
    ds = ManifestDataset(path=str(m), check_files=False, labels=["anger", "neutral"], label_map={"Wut": "angry"})
    assert error_of(ds) == (
        f"manifest {m}: 1 bad row(s):\n"
        "  line 4: label 'bored' (boredom) is not in the declared set ['angry', 'neutral']"
    )
    m.write_text("path,label,speaker\na.wav,Wut,s1\nb.wav,neu,s1\nd.wav,Anger,s2\n")
    assert [u.label for u in ds.utterances()] == ["angry", "neutral", "angry"]


def test_hostile_jsonl_rows_are_all_reported(tmp_path: Path) -> None:
    rows = [
        '{"path": "ok.wav", "label": "happy", "speaker": 7, "duration": 1.5}',
        '{"path": "b.wav", "label": ["happy"], "speaker": "s1"}',
        '{"path": "c.wav", "label": "sad", "speaker": {"id": 1}}',
        '{"path": "d.wav", "label": "sad", "speaker": "s1", "duration": "long"}',
        '{"path": "e.wav", "label": "sad", "speaker": "s1", "duration": -2}',
        '{"path": "f.wav", "label": "sad", "speaker": "s1", "duration": NaN}',
        '{"path": "g.wav", "label": "sad", "speaker": true}',
        '{"path": "  ", "label": "sad", "speaker": "s1"}',
    ]
    m = tmp_path / "m.jsonl"
    m.write_text("\n".join(rows) + "\n")
    assert error_of(ManifestDataset(path=str(m), check_files=False)) == (
        f"manifest {m}: 7 bad row(s):\n"
        "  line 2: expected text or a number for label (list)\n"
        "  line 3: expected text or a number for speaker (dict)\n"
        "  line 4: duration 'long' is not a positive number of seconds\n"
        "  line 5: duration -2 is not a positive number of seconds\n"
        "  line 6: duration nan is not a positive number of seconds\n"
        "  line 7: expected text or a number for speaker (bool)\n"
        "  line 8: empty path"
    )
    m.write_text(rows[0] + "\n")
    (u,) = ManifestDataset(path=str(m), check_files=False).utterances()
    assert (u.speaker, u.duration) == ("7", 1.5)


def test_csv_rows_longer_than_the_header_and_broken_files(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("path,label,speaker\na.wav,happy,s1\nb.wav,sad,s2,extra,more\n")
    assert error_of(ManifestDataset(path=str(m), check_files=False)) == (
        f"manifest {m}: 1 bad row(s):\n  line 3: 2 more field(s) than the header has columns"
    )
    m.write_bytes(b"path,label,speaker\na.wav,h\xe4ppy,s1\n")  # Latin-1, not UTF-8
    assert error_of(ManifestDataset(path=str(m))) == (
        f"manifest {m}: not UTF-8 text (invalid continuation byte at byte 26)"
    )
    m.write_text('path,label,speaker\na.wav,happy,s1\n"' + "x" * 200_000 + '",sad,s2\n')
    assert error_of(ManifestDataset(path=str(m))) == f"manifest {m}:3: not CSV (field larger than field limit (131072))"
    j = tmp_path / "deep.jsonl"
    j.write_text("[" * 100_000 + "\n")
    assert error_of(ManifestDataset(path=str(j))) == f"manifest {j}:1: JSON nested too deeply"


def test_empty_declared_labels_and_empty_label_map_targets_are_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        recipe({"type": "manifest", "path": "m.csv", "labels": [], "label_map": {"x": " "}})
    assert sorted((p, m) for p, _, m in info.value.problems) == [
        ("domains.xa.dataset.label_map", "label_map maps ['x'] to an empty label"),
        ("domains.xa.dataset.labels", "List should have at least 1 item after validation, not 0"),
    ]


# ----------------------------------------------------------------------------- folders
def test_folder_ids_collide_for_the_same_stem_in_two_formats(tmp_path: Path) -> None:
    tone(tmp_path / "angry" / "x.wav")
    tone(tmp_path / "angry" / "x.flac")
    tone(tmp_path / "sad" / "x.wav")
    assert error_of(FolderDataset(root=str(tmp_path))) == (
        f"folder dataset {tmp_path}: duplicate utterance ids (1): angry/x"
    )


def test_folder_ignores_hidden_files_and_refuses_undeclared_folders(tmp_path: Path) -> None:
    tone(tmp_path / "Angry" / "a.wav")
    tone(tmp_path / "sad" / "b.wav")
    (tmp_path / "sad" / "._b.wav").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
    (tmp_path / "sad" / ".cache").mkdir()
    tone(tmp_path / "sad" / ".cache" / "c.wav")
    (tmp_path / "__MACOSX" / "sad").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "sad" / "._b.wav").write_bytes(b"junk")
    tone(tmp_path / "misc" / "m.wav")
    ds = FolderDataset(root=str(tmp_path), labels=["anger", "sad"])
    assert error_of(ds) == (
        f"folder dataset {tmp_path}: emotion folder(s) misc/ (misc) are not in the declared labels "
        "['angry', 'sad']; remove them, map them with label_map, or declare them"
    )
    ds = FolderDataset(root=str(tmp_path), labels=["anger", "sad"], label_map={"misc": "sad"})
    assert [(u.id, u.label) for u in ds.utterances()] == [("Angry/a", "angry"), ("misc/m", "sad"), ("sad/b", "sad")]


# ----------------------------------------------------------------------------- domains and splits
def test_a_domain_with_a_single_class_stops_before_extraction(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("path,label,speaker\na.wav,happy,s1\nb.wav,joy,s2\n")
    r = recipe({"type": "manifest", "path": str(m), "check_files": False})
    with pytest.raises(DatasetError) as info:
        load_domains(r)
    assert str(info.value) == (
        "cannot load the recipe's datasets:\n"
        "  domains.xa (manifest): needs at least 2 emotion labels to train a classifier; all 2 utterances are 'happy'"
    )


def test_folder_without_speaker_regex_cannot_use_the_speaker_protocol(tmp_path: Path) -> None:
    r = recipe({"type": "manifest", "path": "m.csv", "check_files": False}, {"type": "speaker", "k": 2})
    utts = [Utterance(f"u{i}", f"/x/{i}.wav", ("angry", "sad")[i % 2], "unknown") for i in range(6)]
    with pytest.raises(DatasetError) as info:
        plan_splits(r, {"xa": DomainData(utts, ["angry", "sad"], {})}, {"xa": ["angry", "sad"]})
    assert str(info.value) == (
        "domains.xa: speaker-independent folds need at least 2 speakers; found 1 (unknown) "
        "(a folder dataset needs speaker_regex to tell speakers apart)"
    )


def test_a_class_left_without_training_data_by_a_fold_is_an_error() -> None:
    """Only speaker s0 says 'sad': the fold that tests s0 has no 'sad' to train on."""
    r = recipe({"type": "manifest", "path": "m.csv", "check_files": False}, {"type": "speaker", "k": "all"})
    utts = [Utterance(f"s{s}-{i}", f"/x/{s}/{i}.wav", "angry", f"s{s}") for s in range(3) for i in range(3)]
    utts += [Utterance(f"s0-sad{i}", f"/x/0/sad{i}.wav", "sad", "s0") for i in range(3)]
    with pytest.raises(DatasetError) as info:
        plan_splits(r, {"xa": DomainData(utts, ["angry", "sad"], {})}, {"xa": ["angry", "sad"]})
    assert str(info.value) == (
        "domains.xa: repeat 0 fold 0 has no training utterances of ['sad']; use fewer folds or drop the label"
    )


def test_a_validation_set_blind_to_a_label_is_warned_about() -> None:
    """Speakers s0-s3 are angry only, s4-s5 both: some folds' val speakers never say 'sad'."""
    r = recipe({"type": "manifest", "path": "m.csv", "check_files": False}, {"type": "speaker", "k": 3})
    utts = [Utterance(f"s{s}-{i}", f"/x/{s}/{i}.wav", "angry", f"s{s}") for s in range(6) for i in range(4)]
    utts += [Utterance(f"s{s}-sad{i}", f"/x/{s}/sad{i}.wav", "sad", f"s{s}") for s in (4, 5) for i in range(4)]
    with pytest.warns(UserWarning) as caught:
        _, splits = plan_splits(r, {"xa": DomainData(utts, ["angry", "sad"], {})}, {"xa": ["angry", "sad"]})
    blind = [str(w.message) for w in caught if "validation set has no utterances" in str(w.message)]
    assert blind, [str(w.message) for w in caught]
    for msg in blind:
        run_id = "r{}-f{}".format(*msg.split("repeat ")[1].split(":")[0].split(" fold "))
        val = splits["xa"][run_id].val
        expected = f"domains.xa: repeat 0 fold {run_id[-1]}: the validation set has no utterances of ['sad']"
        assert msg.startswith(expected)
        assert {utts[i].label for i in val} == {"angry"}


@pytest.mark.parametrize("k", [0, 1, -3, True, 2.5, "3"])
def test_speaker_folds_refuse_impossible_k(k: Any) -> None:
    with pytest.raises(DatasetError) as info:
        speaker_folds(["a", "b", "c"], k)
    assert str(info.value) == f"k must be an integer >= 2 or 'all', got {k!r}"


corpora = st.lists(
    st.tuples(st.sampled_from([f"spk{i}" for i in range(8)]), st.sampled_from(["angry", "happy", "sad"])),
    min_size=1,
    max_size=60,
)


@PROPERTY
@given(corpus=corpora, k=st.one_of(st.integers(2, 9), st.just("all")), seed=st.integers(0, 2**16))
def test_speaker_folds_partition_the_speakers(corpus: list[tuple[str, str]], k: Any, seed: int) -> None:
    speakers = [s for s, _ in corpus]
    names = sorted(set(speakers))
    try:
        folds = speaker_folds(speakers, k, seed=seed)
    except DatasetError:
        assert len(names) < 2 or (k != "all" and k > len(names))
        return
    assert len(folds) == (len(names) if k == "all" else k)
    assert all(folds), "every fold has a test speaker"
    flat = [s for f in folds for s in f]
    assert sorted(flat) == names  # each speaker in exactly one fold
    assert speaker_folds(speakers, k, seed=seed) == folds


@PROPERTY
@given(corpus=corpora, k=st.integers(2, 4), val=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_no_speaker_is_in_two_sets(corpus: list[tuple[str, str]], k: int, val: float, seed: int) -> None:
    speakers = [s for s, _ in corpus]
    labels = [lab for _, lab in corpus]
    try:
        folds = speaker_folds(speakers, k, seed=seed)
    except DatasetError:
        return
    for test_spk in folds:
        try:
            s = speaker_split(labels, speakers, test_spk, val_speakers=val, seed=seed)
        except DatasetError as err:  # only when nobody is left to train on
            assert set(test_spk) == set(speakers), err
            continue
        train, val_set, test = ({speakers[i] for i in part} for part in (s.train, s.val, s.test))
        assert test == set(test_spk)
        assert not train & test and not val_set & test
        if len(set(speakers) - test) >= 2:
            assert not train & val_set and val_set
        assert sorted(s.train + s.val + s.test) == list(range(len(speakers)))


@PROPERTY
@given(corpus=corpora, k=st.one_of(st.integers(2, 4), st.just("all")), seed=st.integers(0, 1000))
@pytest.mark.filterwarnings("ignore:domains.xa.*model selection cannot see them:UserWarning")  # random corpora
def test_plan_splits_never_puts_a_speaker_in_train_and_test(
    corpus: list[tuple[str, str]], k: Any, seed: int
) -> None:
    r = recipe(
        {"type": "manifest", "path": "m.csv", "check_files": False},
        {"type": "speaker", "k": k},
        seed=seed,
        repeats=2,
    )
    utts = [Utterance(f"u{i}", f"/x/{i}.wav", lab, spk) for i, (spk, lab) in enumerate(corpus)]
    own = sorted({u.label for u in utts})
    try:
        plan, splits = plan_splits(r, {"xa": DomainData(utts, own, {})}, {"xa": own})
    except DatasetError as err:
        assert str(err).startswith("domains.xa: ")
        return
    assert len(plan) == 2 * len(speaker_folds([u.speaker for u in utts], k, seed=seed))
    for split in splits["xa"].values():
        train = {utts[i].speaker for i in split.train}
        val = {utts[i].speaker for i in split.val}
        test = {utts[i].speaker for i in split.test}
        assert not train & test and not val & test
        assert {utts[i].label for i in split.train} == set(own)
