from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.builtin.datasets.folder import FolderDataset
from serkit.builtin.datasets.manifest import ManifestDataset
from serkit.errors import DatasetError


def tone(path: Path, seconds: float = 0.5, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32"), sr, subtype="PCM_16")
    return path


def test_manifest_csv_resolves_paths_maps_labels_and_keeps_extra_columns(tmp_path: Path) -> None:
    tone(tmp_path / "audio" / "a.wav")
    tone(tmp_path / "audio" / "b.wav")
    (tmp_path / "m.csv").write_text(
        "path,label,speaker,fold\naudio/a.wav,Anger,spk1,0\naudio/b.wav,neu,spk2,1\n"
    )
    utts = ManifestDataset(path=str(tmp_path / "m.csv"), language="ur").utterances()
    assert [(u.id, u.label, u.speaker, u.language) for u in utts] == [
        ("audio/a", "angry", "spk1", "ur"),
        ("audio/b", "neutral", "spk2", "ur"),
    ]
    assert utts[0].path == str((tmp_path / "audio" / "a.wav").resolve())
    assert utts[1].meta == {"fold": "1"}


def test_manifest_jsonl_with_root_and_label_map(tmp_path: Path) -> None:
    tone(tmp_path / "data" / "x.wav")
    rows = [{"path": "x.wav", "label": "ghussa", "speaker": "s", "id": "utt-1", "language": "ur"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = ManifestDataset(
        path=str(tmp_path / "m.jsonl"), root=str(tmp_path / "data"), label_map={"ghussa": "angry"}
    )
    (u,) = ds.utterances()
    assert (u.id, u.label, u.language) == ("utt-1", "angry", "ur")


def test_manifest_errors_list_every_bad_row(tmp_path: Path) -> None:
    tone(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text(
        "path,label,speaker\na.wav,happy,s1\nmissing.wav,sad,s1\na.wav,,s2\na.wav,bored,s3\n"
    )
    ds = ManifestDataset(path=str(tmp_path / "m.csv"), labels=["happy", "sad"])
    with pytest.raises(DatasetError) as info:
        ds.utterances()
    msg = str(info.value)
    assert msg.startswith(f"manifest {tmp_path / 'm.csv'}: 3 bad row(s):")
    assert f"line 3: audio file {tmp_path / 'missing.wav'} not found" in msg
    assert "line 4: empty label" in msg
    assert "line 5: label 'bored' (boredom) is not in the declared set ['happy', 'sad']" in msg


def test_manifest_missing_columns_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file,emotion\nx.wav,happy\n")
    with pytest.raises(DatasetError) as info:
        ManifestDataset(path=str(tmp_path / "m.csv")).utterances()
    assert str(info.value) == (
        f"manifest {tmp_path / 'm.csv'}: missing column(s) path, label, speaker; "
        "found file, emotion; expected path,label,speaker"
    )
    tone(tmp_path / "a.wav")
    (tmp_path / "d.csv").write_text("path,label,speaker,id\na.wav,happy,s,u1\na.wav,sad,s,u1\n")
    with pytest.raises(DatasetError, match=r"duplicate utterance ids \(1\): u1"):
        ManifestDataset(path=str(tmp_path / "d.csv")).utterances()


def test_folder_dataset_with_speaker_regex(tmp_path: Path) -> None:
    for emo, names in {"Angry": ["SM1_F01_A01", "SF2_F02_A02"], "Sad": ["SM1_F03_S01"]}.items():
        for n in names:
            tone(tmp_path / emo / f"{n}.wav")
    (tmp_path / "Sad" / "notes.txt").write_text("ignored")
    ds = FolderDataset(root=str(tmp_path), speaker_regex=r"^(S[MF]\d+)_", language="ur")
    utts = ds.utterances()
    assert [(u.id, u.label, u.speaker) for u in utts] == [
        ("Angry/SF2_F02_A02", "angry", "SF2"),
        ("Angry/SM1_F01_A01", "angry", "SM1"),
        ("Sad/SM1_F03_S01", "sad", "SM1"),
    ]
    assert ds.labels() == ["angry", "sad"]


def test_folder_dataset_reports_unmatched_names_and_missing_root(tmp_path: Path) -> None:
    tone(tmp_path / "happy" / "weird.wav")
    with pytest.raises(DatasetError) as info:
        FolderDataset(root=str(tmp_path), speaker_regex=r"^(S\d+)_").utterances()
    assert str(info.value) == (
        f"folder dataset {tmp_path}: speaker_regex '^(S\\\\d+)_' does not match 1 file(s): happy/weird.wav"
    )
    with pytest.raises(DatasetError, match="does not exist or is not a folder"):
        FolderDataset(root=str(tmp_path / "nope")).utterances()


def test_folder_speaker_regex_needs_a_group() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs a capture group"):
        FolderDataset.Params(root="x", speaker_regex=r"S\d+")
