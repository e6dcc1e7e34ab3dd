"""Split audit: shared speakers, identical audio across sets, unseen test labels."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from serkit.data.audit import audit_splits
from serkit.data.splits import Split, predefined_splits, speaker_folds, speaker_split
from serkit.data.utterance import Utterance
from serkit.engine.audit import audit_manifest, audit_recipe
from serkit.errors import DatasetError
from serkit.report.html import markdown_to_html
from serkit.report.trust import audit_banner
from serkit.testing.cli import run_cli

LABELS = ("angry", "happy", "neutral", "sad")


def write_corpus(folder: Path, n_speakers: int = 4, per_label: int = 4) -> list[dict[str, str]]:
    """Small distinct files (bytes differ per file: the audit hashes bytes, nothing is decoded)."""
    rows = []
    for s in range(n_speakers):
        for lab in LABELS:
            for k in range(per_label):
                rel = f"s{s}/{lab}_{k}.wav"
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(f"audio {s} {lab} {k}".encode())
                rows.append({"path": rel, "label": lab, "speaker": f"s{s}"})
    return rows


def write_manifest(path: Path, rows: list[dict[str, str]], extra: str) -> Path:
    lines = [f"path,label,speaker,{extra}"] + [f"{r['path']},{r['label']},{r['speaker']},{r[extra]}" for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_emobox_style_folds_that_share_speakers_are_flagged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = write_corpus(tmp_path)
    for i, r in enumerate(rows):  # folds over utterances, not speakers: every speaker in every fold
        r["fold"] = str(i % 4)
    manifest = write_manifest(tmp_path / "folds.csv", rows, "fold")
    audit = audit_manifest(manifest, index_folder=tmp_path / "index")
    dom = audit["domains"]["folds"]
    assert audit["speaker_dependent"] and dom["speaker_dependent"]
    assert dom["n_runs"] == 4 and dom["n_speakers"] == 4
    tt = dom["speakers"]["train/test"]
    assert tt == {
        "runs": 4,
        "of_runs": 4,
        "speakers": 4,
        "of_speakers": 4,
        "utterances": 64,
        "of_utterances": 64,
        "examples": ["s0", "s1", "s2", "s3"],
    }
    assert dom["per_run"]["fold=0"]["train/test"] == 4
    assert audit["findings"][1] == (
        "folds: speakers in both train and test in 4 of 4 run(s): 4 of 4 test speakers, "
        "64 of 64 test utterances (summed over runs)"
    )
    assert dom["identical_audio"]["groups"] == 0 and not audit["clean"]
    # the command prints the same, exit code 0: findings are information
    assert run_cli(["data", "audit", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("folds: 64 utterances, 4 speakers, 4 run(s); speaker-dependent\n3 finding(s):\n")
    assert f"  - {audit['findings'][1]}\n" in out
    assert run_cli(["data", "audit", str(manifest), "--json", "--no-content"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["domains"]["folds"]["speakers"]["train/test"] == tt
    assert printed["domains"]["folds"]["identical_audio"] == {"checked": False}


def test_speaker_folds_are_not_flagged() -> None:
    speakers = [f"s{i % 6}" for i in range(120)]
    labels = [LABELS[(i // 6) % 4] for i in range(120)]
    utts = [Utterance(f"u{i}", f"/x/{i}.wav", labels[i], speakers[i]) for i in range(120)]
    folds = speaker_folds(speakers, 3, seed=0)
    runs = {f"r0-f{f}": speaker_split(labels, speakers, folds[f], seed=f) for f in range(3)}
    content = {"xa": {u.id: f"{i:064x}" for i, u in enumerate(utts)}}
    audit = audit_splits({"xa": utts}, {"xa": runs}, content=content, protocol="speaker")
    assert audit["clean"] and audit["findings"] == [] and not audit["speaker_dependent"]
    spk = audit["domains"]["xa"]["speakers"]
    assert [spk[p]["runs"] for p in ("train/val", "train/test", "val/test")] == [0, 0, 0]
    assert spk["train/test"]["of_runs"] == 3 and spk["train/test"]["of_speakers"] == 6


def test_a_recipe_with_speaker_folds_is_clean_and_with_a_random_split_is_not(tmp_path: Path) -> None:
    from serkit.config.recipe import load_recipe

    rows = write_corpus(tmp_path, n_speakers=6)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker\n" + "".join(f"{r['path']},{r['label']},{r['speaker']}\n" for r in rows))
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(
        f"name: audited\nrepeats: 2\nprotocol: {{type: speaker, k: 3}}\n"
        f"domains: {{xa: {{dataset: {{type: manifest, path: {manifest}}}}}}}\n"
        "features: {mfcc: {extractor: {type: mfcc, n_mfcc: 13}, encoder: {type: mean_pool}}}\n"
    )
    recipe, _ = load_recipe(recipe_file)
    audit = audit_recipe(recipe)
    assert audit["clean"], audit["findings"]
    assert audit["domains"]["xa"]["n_runs"] == 6 and audit["domains"]["xa"]["identical_audio"]["checked"]
    recipe, _ = load_recipe(recipe_file, ["protocol=random"])
    audit = audit_recipe(recipe, content=False)
    assert audit["speaker_dependent"] and audit["protocol"] == "random"
    assert audit["domains"]["xa"]["speakers"]["train/test"]["runs"] == 2


def test_a_file_duplicated_across_sets_is_found(tmp_path: Path) -> None:
    rows = write_corpus(tmp_path, n_speakers=4, per_label=2)
    for r in rows:  # speaker folds: no speaker finding
        r["fold"] = r["speaker"][1:]
    copy = dict(rows[0], path="s3/copy_of_s0_angry_0.wav", speaker="s3", fold="3")
    (tmp_path / copy["path"]).write_bytes((tmp_path / rows[0]["path"]).read_bytes())
    manifest = write_manifest(tmp_path / "dup.csv", [*rows, copy], "fold")
    audit = audit_manifest(manifest, index_folder=tmp_path / "index")
    dup = audit["domains"]["dup"]["identical_audio"]
    assert dup["groups"] == 1 and dup["unhashed"] == 0
    # fold 0 tests s0 (the original) with the copy in train; fold 3 the reverse
    assert dup["train/test"] == {
        "runs": 2,
        "of_runs": 4,
        "contents": 1,
        "examples": [
            {
                "run": "fold=0",
                "utterances": [
                    {"id": "s0/angry_0", "set": "test"},
                    {"id": "s3/copy_of_s0_angry_0", "set": "train"},
                ],
            }
        ],
    }
    assert audit["findings"][1] == (
        "dup: identical audio in train and test in 2 of 4 run(s): 1 audio content(s), "
        "e.g. s0/angry_0 (test) = s3/copy_of_s0_angry_0 (train)"
    )
    assert not audit["speaker_dependent"]


def test_test_labels_absent_from_train_and_val_and_shared_heads_pool_labels() -> None:
    names = ["angry", "sad", "fear", "angry", "sad"]
    utts = [Utterance(f"u{i}", f"/x/{i}", lab, f"s{i}") for i, lab in enumerate(names)]
    split = Split(train=(0, 1), val=(3, 4), test=(2,))
    audit = audit_splits({"de": utts}, {"de": {"r0-f0": split}})
    assert audit["domains"]["de"]["labels"] == {
        "not_in_train": {"runs": 1, "labels": ["fear"]},
        "not_in_val": {"runs": 1, "labels": ["fear"]},
    }
    assert audit["findings"] == [
        "de: test labels absent from train in 1 of 1 run(s): fear",
        "de: test labels absent from val in 1 of 1 run(s): fear",
    ]
    # a cross-corpus test domain: its labels are looked up in the train sets of its head's domains
    other = [Utterance(f"v{i}", f"/y/{i}", lab, f"t{i}") for i, lab in enumerate(["fear", "angry", "fear"])]
    splits = {"de": {"r0-f0": Split((), (), (0, 1, 2, 3, 4))}, "en": {"r0-f0": Split((0, 1), (2,), ())}}
    audit = audit_splits({"de": utts, "en": other}, splits, head_of={"de": "en", "en": "en"})
    assert audit["domains"]["de"]["labels"]["not_in_train"] == {"runs": 1, "labels": ["sad"]}
    assert audit["domains"]["de"]["labels"]["not_in_val"] == {"runs": 1, "labels": ["angry", "sad"]}


def test_identical_audio_across_domains_and_unknown_speakers() -> None:
    a = [Utterance(f"a{i}", f"/a/{i}", LABELS[min(i, 1)], "unknown") for i in range(4)]
    b = [Utterance(f"b{i}", f"/b/{i}", LABELS[min(i, 1)], f"t{i}") for i in range(4)]
    content = {"xa": {f"a{i}": f"h{i}" for i in range(4)}, "xb": {f"b{i}": f"k{i}" for i in range(4)}}
    content["xb"]["b1"] = "h3"  # xb's training file b1 is xa's test file a3
    splits = {"xa": {"r0-f0": Split((0, 1), (2,), (3,))}, "xb": {"r0-f0": Split((0, 1), (2,), (3,))}}
    audit = audit_splits({"xa": a, "xb": b}, splits, content=content)
    assert audit["cross_domain"]["runs"] == 1 and audit["cross_domain"]["contents"] == 1
    assert audit["cross_domain"]["examples"][0]["utterances"] == [
        {"domain": "xa", "id": "a3", "set": "test"},
        {"domain": "xb", "id": "b1", "set": "train"},
    ]
    assert audit["findings"] == [
        "xa: no speaker ids (every utterance's speaker is unknown): speaker overlap not checked",
        "identical audio in one domain's test set and another's train/val in 1 of 1 run(s): 1 audio content(s), "
        "e.g. xa:a3 (test) = xb:b1 (train)",
    ]


def test_audit_of_10000_utterances_and_50_runs_takes_under_a_second() -> None:
    n = 10_000
    labels = [LABELS[i % 4] for i in range(n)]
    utts = [Utterance(f"u{i}", f"/x/{i}.wav", labels[i], f"s{i % 40}") for i in range(n)]
    content = {u.id: f"{i:064x}" for i, u in enumerate(utts)}
    content["u7"] = content["u3"]
    runs = {}
    for r in range(5):
        for name, s in predefined_splits(labels, [{"fold": str(i % 10)} for i in range(n)], seed=r):
            runs[f"r{r}-{name}"] = s
    t0 = time.perf_counter()
    audit = audit_splits({"de": utts}, {"de": runs}, content={"de": content})
    assert time.perf_counter() - t0 < 1.0
    assert audit["domains"]["de"]["n_runs"] == 50 and audit["domains"]["de"]["identical_audio"]["groups"] == 1


def test_banner_in_markdown_and_html() -> None:
    audit = {"speaker_dependent": True, "protocol": "predefined", "findings": ["de: speakers in both train and test"]}
    lines = audit_banner(audit)
    assert lines[0].startswith("> **Split audit:** **speaker-dependent**: test speakers were also heard")
    assert lines[2] == "> - de: speakers in both train and test"
    html = markdown_to_html("\n".join(lines))
    assert html.startswith("<blockquote>\n<p><strong>Split audit:</strong>")
    assert "<li>de: speakers in both train and test</li>" in html and html.endswith("</blockquote>")
    assert audit_banner({"findings": []}) == [] and audit_banner(None) == []


def test_manifest_without_split_or_fold_column_is_refused(tmp_path: Path) -> None:
    rows = write_corpus(tmp_path, n_speakers=2, per_label=1)
    manifest = tmp_path / "plain.csv"
    manifest.write_text("path,label,speaker\n" + "".join(f"{r['path']},{r['label']},{r['speaker']}\n" for r in rows))
    with pytest.raises(DatasetError, match=r"no 'split' or 'fold' column, so there are no splits to audit"):
        audit_manifest(manifest, content=False)
    assert run_cli(["data", "audit", str(manifest)]) == 2  # an error, not a finding


def test_audit_takes_a_bundled_recipe_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["data", "audit", "quickstart", "--no-content"]) == 0
    out = capsys.readouterr().out
    assert "xb: 320 utterances, 8 speakers, 4 run(s)" in out and "no findings" in out
