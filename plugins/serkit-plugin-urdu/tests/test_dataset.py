"""The ``urdu`` dataset on a fake URDU tree with real file names (no real audio needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from serkit.errors import DatasetError
from serkit.testing.contracts import DatasetContract, write_fake_corpus

from serkit_plugin_urdu.dataset import UrduDataset, UrduName, parse_name

#: Real names from the corpus (three speakers per emotion, both genders, 1-3 digit numbers).
FILES = [
    "Angry/SM1_F10_A010.wav",
    "Angry/SM1_F11_A011.wav",
    "Angry/SF3_F2_A042.wav",
    "Angry/SM17_F1_A070.wav",
    "Happy/SF1_F10_H010.wav",
    "Happy/SM1_F1_H031.wav",
    "Happy/SM17_F3_H090.wav",
    "Neutral/SF9_F1_N01.wav",
    "Neutral/SF9_F2_N02.wav",
    "Neutral/SM1_F20_N100.wav",
    "Sad/SF10_F1_S01.wav",
    "Sad/SF11_F1_S03.wav",
    "Sad/SM3_F4_S055.wav",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write_fake_corpus(tmp_path / "URDU-Dataset", FILES, seconds=0.2)
    return tmp_path / "URDU-Dataset"


class TestUrduContract(DatasetContract):
    """The serkit dataset contract (ids, labels, speakers, language, audio, metadata)."""

    strict = True  # the worked example has no warnings at all

    @pytest.fixture
    def dataset(self, tree: Path) -> UrduDataset:
        return UrduDataset(root=str(tree))


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("SM1_F10_A010", UrduName("SM1", "M", 10, "A", 10)),
        ("SF9_F1_N01", UrduName("SF9", "F", 1, "N", 1)),
        ("SM27_F3_H100", UrduName("SM27", "M", 3, "H", 100)),
        ("SF10_F1_S01", UrduName("SF10", "F", 1, "S", 1)),
    ],
)
def test_parse_name(stem: str, expected: UrduName) -> None:
    assert parse_name(stem) == expected


@pytest.mark.parametrize(
    ("stem", "message"),
    [
        ("SX1_F10_A010", "name does not match S<M|F><id>_F<nn>_<A|H|N|S><nnn>.wav"),
        ("SM1_A010", "name does not match S<M|F><id>_F<nn>_<A|H|N|S><nnn>.wav"),
        ("sm1_f10_a010", "name does not match S<M|F><id>_F<nn>_<A|H|N|S><nnn>.wav"),
        ("SM1_F10_X010", "unknown emotion letter 'X' (expected one of A, H, N, S)"),
    ],
)
def test_parse_name_rejects(stem: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_name(stem)
    assert str(info.value) == message


def test_utterances_speakers_labels_and_order(tree: Path) -> None:
    utts = UrduDataset(root=str(tree)).utterances()
    assert [(u.id, u.label, u.speaker) for u in utts[:4]] == [
        ("SF3_F2_A042", "angry", "SF3"),
        ("SM17_F1_A070", "angry", "SM17"),
        ("SM1_F10_A010", "angry", "SM1"),
        ("SM1_F11_A011", "angry", "SM1"),
    ]
    assert len(utts) == len(FILES)
    assert {u.language for u in utts} == {"ur"}
    assert sorted({u.speaker for u in utts}) == ["SF1", "SF10", "SF11", "SF3", "SF9", "SM1", "SM17", "SM3"]
    assert [sum(u.label == lab for u in utts) for lab in ("angry", "happy", "neutral", "sad")] == [4, 3, 3, 3]
    first = utts[2]
    assert first.path == str((tree / "Angry" / "SM1_F10_A010.wav").resolve())
    assert first.meta == {"gender": "M", "file_no": 10, "number": 10}


def test_labels_are_declared_without_scanning(tmp_path: Path) -> None:
    assert UrduDataset(root=str(tmp_path / "nowhere")).labels() == ["angry", "happy", "neutral", "sad"]


def test_lower_case_folders_and_other_files_are_fine(tmp_path: Path) -> None:
    write_fake_corpus(tmp_path, ["angry/SM1_F1_A001.wav", "sad/SM2_F1_S001.WAV", "happy/SF1_F1_H001.wav"])
    write_fake_corpus(tmp_path, ["neutral/SF2_F1_N001.wav", "extras/whatever.wav"])
    (tmp_path / "sad" / "notes.txt").write_text("not audio")
    (tmp_path / "sad" / ".DS_Store").write_bytes(b"\0")
    utts = UrduDataset(root=str(tmp_path)).utterances()
    assert [u.id for u in utts] == ["SM1_F1_A001", "SF1_F1_H001", "SF2_F1_N001", "SM2_F1_S001"]


def test_folder_and_letter_disagree_or_name_is_wrong(tree: Path) -> None:
    write_fake_corpus(tree, ["Happy/SM1_F12_A012.wav", "Sad/recording 7.wav"])
    with pytest.raises(DatasetError) as info:
        UrduDataset(root=str(tree)).utterances()
    assert str(info.value) == (
        f"urdu dataset {tree}: 2 problem(s) (set strict: false to skip them):\n"
        "  Happy/SM1_F12_A012.wav: the folder says happy but the letter 'A' says angry\n"
        "  Sad/recording 7.wav: name does not match S<M|F><id>_F<nn>_<A|H|N|S><nnn>.wav"
    )


def test_not_strict_skips_bad_files_with_a_warning(tree: Path) -> None:
    write_fake_corpus(tree, ["Happy/SM1_F12_A012.wav"])
    with pytest.warns(UserWarning) as record:
        utts = UrduDataset(root=str(tree), strict=False).utterances()
    assert len(utts) == len(FILES)
    assert str(record[0].message) == (
        f"urdu dataset {tree}: 1 problem(s); skipped:\n"
        "  Happy/SM1_F12_A012.wav: the folder says happy but the letter 'A' says angry"
    )


def test_missing_emotion_folder(tmp_path: Path) -> None:
    write_fake_corpus(tmp_path, [f for f in FILES if not f.startswith("Sad/")])
    with pytest.raises(DatasetError, match=r"1 problem\(s\) \(set strict: false to skip them\):\n  Sad/: missing$"):
        UrduDataset(root=str(tmp_path)).utterances()
    with pytest.warns(UserWarning, match="Sad/: missing"):
        utts = UrduDataset(root=str(tmp_path), strict=False).utterances()
    assert {u.label for u in utts} == {"angry", "happy", "neutral"}


def test_missing_root_says_how_to_get_the_corpus(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        UrduDataset(root=str(tmp_path / "URDU")).utterances()
    assert str(info.value) == (
        f"urdu dataset: root {tmp_path / 'URDU'} does not exist or is not a folder; "
        "git clone https://github.com/siddiquelatif/URDU-Dataset and set root to the clone, the folder "
        "that holds Angry/, Happy/, Neutral/ and Sad/ (research use only)"
    )
    (tmp_path / "wrong").mkdir()
    with pytest.raises(DatasetError, match=r"has none of the folders Angry/, Happy/, Neutral/, Sad/; git clone"):
        UrduDataset(root=str(tmp_path / "wrong")).utterances()


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        UrduDataset(root="/x", language="ur")
    with pytest.raises(ValidationError, match="root"):
        UrduDataset()
