"""The standard corpora: fake trees with each corpus's real naming, parsed without decoding audio."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.builtin.datasets.aesdd import AesddDataset
from serkit.builtin.datasets.cafe import CafeDataset
from serkit.builtin.datasets.cremad import CremaDDataset
from serkit.builtin.datasets.emodb import EmoDbDataset
from serkit.builtin.datasets.emovo import EmovoDataset
from serkit.builtin.datasets.iemocap import IemocapDataset
from serkit.builtin.datasets.ravdess import RavdessDataset
from serkit.builtin.datasets.savee import SaveeDataset
from serkit.builtin.datasets.shemo import ShemoDataset
from serkit.builtin.datasets.subesco import SubescoDataset
from serkit.builtin.datasets.tess import TessDataset
from serkit.data.corpus import CorpusDataset
from serkit.data.labels import CANONICAL_LABELS
from serkit.errors import DatasetError
from serkit.registry import Registry


def _wav_bytes() -> bytes:
    buf = io.BytesIO()
    noise = (0.01 * np.random.default_rng(0).standard_normal(3200)).astype("float32")
    sf.write(buf, noise, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


WAV = _wav_bytes()  # 0.2 s of low noise at 16 kHz


def put(root: Path, *rels: str, data: bytes = WAV) -> None:
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def triples(ds: CorpusDataset) -> list[tuple[str, str, str]]:
    return [(u.id, u.label, u.speaker) for u in ds.utterances()]


# ----------------------------------------------------------------------------- fake trees
def emodb_tree(root: Path) -> None:
    put(root, *(f"wav/{s}.wav" for s in ("03a01Fa", "03a01Wa", "08b02Tb", "16b10Lc", "10a05Nb", "13a07Aa", "14b03Ea")))
    put(root, "lablaut/03a01Fa.lab", "erkennung.txt", data=b"not audio")


EMODB = [
    ("03a01Fa", "happy", "03"),
    ("03a01Wa", "angry", "03"),
    ("08b02Tb", "sad", "08"),
    ("10a05Nb", "neutral", "10"),
    ("13a07Aa", "fear", "13"),
    ("14b03Ea", "disgust", "14"),
    ("16b10Lc", "boredom", "16"),
]


def cafe_tree(root: Path) -> None:
    put(
        root,
        "Colère/Faible/01-C-1-1.wav",
        "Colère/Fort/02-C-2-1.wav",
        "Joie/Fort/03-J-2-4.wav",
        "Joie/Faible/03-J-1-4.wav",
        "Neutre/04-N-5.wav",
        "Tristesse/Faible/05-T-1-6.wav",
        "Peur/Fort/06-P-2-2.aiff",
        "Dégoût/Fort/07-D-2-3.wav",
        "Surprise/Faible/08-S-1-2.wav",
    )
    put(root, "Readme.txt", "License.txt", data=b"text")


CAFE = [
    ("01-C-1-1", "angry", "01"),
    ("02-C-2-1", "angry", "02"),
    ("07-D-2-3", "disgust", "07"),
    ("03-J-1-4", "happy", "03"),
    ("03-J-2-4", "happy", "03"),
    ("04-N-5", "neutral", "04"),
    ("06-P-2-2", "fear", "06"),
    ("08-S-1-2", "surprise", "08"),
    ("05-T-1-6", "sad", "05"),
]

IEMOCAP_TXT = {
    "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt": (
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_F001\tfru\t[2.0000, 3.5000, 3.0000]\n\n"
        "[14.8872 - 18.0175]\tSes01F_impro01_M000\texc\t[3.5000, 3.5000, 3.5000]\n\n"
        "[19.2900 - 20.7875]\tSes01F_impro01_M001\tang\t[1.5000, 4.0000, 4.0000]\n"
    ),
    "Session1/dialog/EmoEvaluation/Ses01M_script01_1.txt": (
        "[0.0000 - 2.5000]\tSes01M_script01_1_F000\tsad\t[2.0000, 2.0000, 2.0000]\n"
        "[3.0000 - 4.2500]\tSes01M_script01_1_M000\thap\t[4.0000, 3.0000, 3.0000]\n"
        "[5.0000 - 6.0000]\tSes01M_script01_1_M001\txxx\t[3.0000, 3.0000, 3.0000]\n"
    ),
    "Session2/dialog/EmoEvaluation/Ses02F_impro02.txt": (
        "[1.0000 - 2.0000]\tSes02F_impro02_F000\tneu\t[3.0000, 2.0000, 2.5000]\n"
        "[2.0000 - 3.5000]\tSes02F_impro02_M000\tsad\t[1.5000, 2.0000, 2.0000]\n"
    ),
}


def iemocap_tree(root: Path) -> None:
    for rel, text in IEMOCAP_TXT.items():
        put(root, rel, data=text.encode())
        for line in text.splitlines():
            if line.startswith("["):
                utt = line.split("\t")[1]
                dialog = utt.rsplit("_", 1)[0]
                put(root, f"{rel.split('/')[0]}/sentences/wav/{dialog}/{utt}.wav")
    # per-annotator files and macOS debris next to the majority-vote files are not read
    put(root, "Session1/dialog/EmoEvaluation/Categorical/Ses01F_impro01_e1_cat.txt", data=b"junk")
    put(root, "Session1/dialog/EmoEvaluation/._Ses01F_impro01.txt", data=b"\x00\x05junk")


IEMOCAP = [
    ("Ses01F_impro01_F000", "neutral", "Ses01F"),
    ("Ses01F_impro01_M000", "happy", "Ses01M"),
    ("Ses01F_impro01_M001", "angry", "Ses01M"),
    ("Ses01M_script01_1_F000", "sad", "Ses01F"),
    ("Ses01M_script01_1_M000", "happy", "Ses01M"),
    ("Ses02F_impro02_F000", "neutral", "Ses02F"),
    ("Ses02F_impro02_M000", "sad", "Ses02M"),
]


def ravdess_tree(root: Path) -> None:
    put(
        root,
        "Actor_01/03-01-01-01-01-01-01.wav",
        "Actor_01/03-01-02-02-01-02-01.wav",
        "Actor_02/03-01-05-01-02-01-02.wav",
        "Actor_02/03-01-05-02-02-01-02.wav",
        "Actor_02/03-02-03-01-01-01-02.wav",
        "Actor_13/03-01-08-02-01-01-13.wav",
        "Actor_24/03-01-06-01-02-02-24.wav",
        "Actor_24/03-02-04-02-02-02-24.wav",
    )


RAVDESS = [
    ("03-01-01-01-01-01-01", "neutral", "01"),
    ("03-01-02-02-01-02-01", "calm", "01"),
    ("03-01-05-01-02-01-02", "angry", "02"),
    ("03-01-05-02-02-01-02", "angry", "02"),
    ("03-01-08-02-01-01-13", "surprise", "13"),
    ("03-01-06-01-02-02-24", "fear", "24"),
]


def cremad_tree(root: Path) -> None:
    names = ("1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_TIE_SAD_LO", "1091_MTI_NEU_XX", "1050_IWW_FEA_MD")
    put(root, *(f"AudioWAV/{n}.wav" for n in (*names, "1050_ITS_DIS_XX")))
    put(root, "AudioMP3/1001_DFA_ANG_XX.mp3", "VideoDemographics.csv", data=b"not wav")


CREMAD = [
    ("1001_DFA_ANG_XX", "angry", "1001"),
    ("1001_IEO_HAP_HI", "happy", "1001"),
    ("1002_TIE_SAD_LO", "sad", "1002"),
    ("1050_ITS_DIS_XX", "disgust", "1050"),
    ("1050_IWW_FEA_MD", "fear", "1050"),
    ("1091_MTI_NEU_XX", "neutral", "1091"),
]


def savee_tree(root: Path) -> None:
    put(root, "DC/a01.wav", "DC/sa02.wav", "JE/su15.wav", "JK/n30.wav", "KL/d03.wav", "KL/f07.wav", "KL/h11.wav")
    put(root, "Info.txt", "emobox_folds.csv", data=b"text")


SAVEE = [
    ("DC_a01", "angry", "DC"),
    ("DC_sa02", "sad", "DC"),
    ("JE_su15", "surprise", "JE"),
    ("JK_n30", "neutral", "JK"),
    ("KL_d03", "disgust", "KL"),
    ("KL_f07", "fear", "KL"),
    ("KL_h11", "happy", "KL"),
]


def emovo_tree(root: Path) -> None:
    put(
        root,
        "f1/dis-f1-b1.wav",
        "f1/gio-f1-l2.wav",
        "f2/neu-f2-n5.wav",
        "m1/pau-m1-d1.wav",
        "m2/rab-m2-b3.wav",
        "m3/sor-m3-l4.wav",
        "m3/tri-m3-n1.wav",
    )
    put(root, "documents/EMOVO.pdf", data=b"%PDF")


EMOVO = [
    ("dis-f1-b1", "disgust", "f1"),
    ("gio-f1-l2", "happy", "f1"),
    ("neu-f2-n5", "neutral", "f2"),
    ("pau-m1-d1", "fear", "m1"),
    ("rab-m2-b3", "angry", "m2"),
    ("sor-m3-l4", "surprise", "m3"),
    ("tri-m3-n1", "sad", "m3"),
]


def shemo_tree(root: Path) -> None:
    put(root, "female/F01A01.wav", "female/F01H02.wav", "female/F12W10.wav")
    put(root, "male/M05N01.wav", "male/M05S07.wav", "male/M56F01.wav")


SHEMO = [
    ("F01A01", "angry", "F01"),
    ("F01H02", "happy", "F01"),
    ("F12W10", "surprise", "F12"),
    ("M05N01", "neutral", "M05"),
    ("M05S07", "sad", "M05"),
    ("M56F01", "fear", "M56"),
]


def aesdd_tree(root: Path) -> None:
    put(
        root,
        "anger/a01 (1).wav",
        "anger/a06 (5)b.wav",
        "disgust/d03 (01).wav",
        "fear/f18 (5).wav",
        "happiness/h20 (6).wav",
        "sadness/s01 (5)a.wav",
    )
    put(root, "Tools and Documentation/readme.txt", data=b"text")


AESDD = [
    ("a01 (1)", "angry", "1"),
    ("a06 (5)b", "angry", "5"),
    ("d03 (01)", "disgust", "1"),
    ("f18 (5)", "fear", "5"),
    ("h20 (6)", "happy", "6"),
    ("s01 (5)a", "sad", "5"),
]


def subesco_tree(root: Path) -> None:
    put(
        root,
        "F_01_OISHI_S_1_ANGRY_1.wav",
        "F_02_MONIKA_S_2_SURPRISE_3].wav",
        "M_03_TANVIR_S_10_NEUTRAL_5.wav",
        "M_03_TANVIR_S_4_DISGUST_2.wav",
        "F_01_OISHI_S_7_HAPPY_4.wav",
        "M_10_RAFI_S_9_SAD_1.wav",
        "F_05_MIM_S_3_FEAR_2.wav",
    )


SUBESCO = [
    ("F_01_OISHI_S_1_ANGRY_1", "angry", "F_01"),
    ("F_01_OISHI_S_7_HAPPY_4", "happy", "F_01"),
    ("F_02_MONIKA_S_2_SURPRISE_3", "surprise", "F_02"),
    ("F_05_MIM_S_3_FEAR_2", "fear", "F_05"),
    ("M_03_TANVIR_S_10_NEUTRAL_5", "neutral", "M_03"),
    ("M_03_TANVIR_S_4_DISGUST_2", "disgust", "M_03"),
    ("M_10_RAFI_S_9_SAD_1", "sad", "M_10"),
]


def tess_tree(root: Path) -> None:
    put(
        root,
        "OAF_angry/OAF_back_angry.wav",
        "OAF_neutral/OA_bite_neutral.wav",
        "OAF_Pleasant_surprise/OAF_bath_ps.wav",
        "OAF_happy/OAF_chat_happy.wav",
        "YAF_fear/YAF_shout_fear.wav",
        "YAF_pleasant_surprised/YAF_food_ps.wav",
        "YAF_sad/YAF_dog_sad.wav",
        "YAF_disgust/YAF_chair_disgust.wav",
    )


TESS = [
    ("OAF_bath_ps", "surprise", "OAF"),
    ("OAF_back_angry", "angry", "OAF"),
    ("OAF_chat_happy", "happy", "OAF"),
    ("OA_bite_neutral", "neutral", "OAF"),
    ("YAF_chair_disgust", "disgust", "YAF"),
    ("YAF_shout_fear", "fear", "YAF"),
    ("YAF_food_ps", "surprise", "YAF"),
    ("YAF_dog_sad", "sad", "YAF"),
]


@dataclass(frozen=True)
class Case:
    cls: type[CorpusDataset]
    build: Callable[[Path], None]
    expected: list[tuple[str, str, str]]
    language: str
    bad_rel: str  # a misnamed file to add ...
    bad_reason: str  # ... and what the problem says about it
    kwargs: dict[str, object] | None = None


CASES = [
    Case(
        EmoDbDataset, emodb_tree, EMODB, "de", "wav/03a01Xa.wav", "unknown emotion letter 'X' (expected one of WLEAFTN)"
    ),
    Case(CafeDataset, cafe_tree, CAFE, "fr", "Joie/Fort/03-J-2.wav", "emotion 'J' needs an intensity field (AA-E-I-S)"),
    Case(
        IemocapDataset,
        iemocap_tree,
        IEMOCAP,
        "en",
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav",
        "listed in Session1/dialog/EmoEvaluation/Ses01F_impro01.txt but the wav is missing",
        {"sessions": [1, 2]},
    ),
    Case(
        RavdessDataset,
        ravdess_tree,
        RAVDESS,
        "en",
        "Actor_03/03-01-09-01-01-01-03.wav",
        "unknown emotion code '09' (expected one of 01, 02, 03, 04, 05, 06, 07, 08)",
    ),
    Case(
        CremaDDataset,
        cremad_tree,
        CREMAD,
        "en",
        "AudioWAV/1001_DFA_XYZ_XX.wav",
        "unknown emotion code 'XYZ' (expected one of ANG, DIS, FEA, HAP, NEU, SAD)",
    ),
    Case(SaveeDataset, savee_tree, SAVEE, "en", "DC/readme.wav", "name does not follow the scheme"),
    Case(
        EmovoDataset,
        emovo_tree,
        EMOVO,
        "it",
        "f1/xyz-f1-b1.wav",
        "unknown emotion code 'xyz' (expected one of dis, gio, neu, pau, rab, sor, tri)",
    ),
    Case(
        ShemoDataset, shemo_tree, SHEMO, "fa", "male/M05Q01.wav", "unknown emotion letter 'Q' (expected one of AHNSWF)"
    ),
    Case(AesddDataset, aesdd_tree, AESDD, "el", "anger/anger 1.wav", "name does not follow the scheme"),
    Case(
        SubescoDataset,
        subesco_tree,
        SUBESCO,
        "bn",
        "F_01_OISHI_S_1_BORED_1.wav",
        "unknown emotion 'BORED' (expected one of ANGRY, DISGUST, FEAR, HAPPY, NEUTRAL, SAD, SURPRISE)",
    ),
    Case(
        TessDataset,
        tess_tree,
        TESS,
        "en",
        "YAF_sad/YAF_dog_bored.wav",
        "unknown emotion 'bored' (expected one of angry, disgust, fear, happy, neutral, ps, sad)",
    ),
]
IDS = [c.cls.name for c in CASES]


def make(case: Case, root: Path, **kwargs: object) -> CorpusDataset:
    return case.cls(root=str(root), **{**(case.kwargs or {}), **kwargs})


def misname(case: Case, root: Path) -> None:
    if case.cls is IemocapDataset:  # annotation-driven: a listed utterance without its wav
        (root / case.bad_rel).unlink()
    else:
        put(root, case.bad_rel)


# ------------------------------------------------------------------------- every corpus
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parses_the_fake_tree_exactly(case: Case, tmp_path: Path) -> None:
    case.build(tmp_path)
    ds = make(case, tmp_path)
    utts = ds.utterances()
    assert [(u.id, u.label, u.speaker) for u in utts] == case.expected
    assert {u.language for u in utts} == {case.language} == {ds.language}
    assert {u.label for u in utts} <= set(case.cls.expected_labels) <= set(CANONICAL_LABELS)
    assert all(Path(u.path).is_absolute() and Path(u.path).is_file() for u in utts)
    assert all(Path(u.path).parent.resolve().is_relative_to(tmp_path.resolve()) for u in utts)
    assert ds.problems == []
    assert ds.labels() == sorted({lab for _, lab, _ in case.expected})


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_misnamed_file_strict_raises_naming_it(case: Case, tmp_path: Path) -> None:
    case.build(tmp_path)
    misname(case, tmp_path)
    with pytest.raises(DatasetError) as info:
        make(case, tmp_path).utterances()
    msg = str(info.value)
    intro = case.cls.problems_intro.format(n=1, root=tmp_path.resolve(), naming=case.cls.naming)
    assert msg == f"{case.cls.name}: {intro}:\n  {case.bad_rel}: {case.bad_reason}\n{case.cls.problems_advice}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_misnamed_file_non_strict_is_skipped_and_listed(case: Case, tmp_path: Path) -> None:
    case.build(tmp_path)
    misname(case, tmp_path)
    ds = make(case, tmp_path, strict=False)
    got = [(u.id, u.label, u.speaker) for u in ds.utterances()]
    want = case.expected
    if case.cls is IemocapDataset:
        want = [t for t in want if t[0] != "Ses01F_impro01_M001"]
    assert got == want
    assert ds.problems == [f"{case.bad_rel}: {case.bad_reason}"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_root_says_how_to_get_the_corpus(case: Case, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as info:
        make(case, missing).utterances()
    assert str(info.value) == (f"{case.cls.name}: root {missing} does not exist; how to get it: {case.cls.how_to_get}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_empty_root_is_an_error(case: Case, tmp_path: Path) -> None:
    put(tmp_path, "README.txt", data=b"nothing here")
    if case.cls is IemocapDataset:  # the annotation folders exist but list nothing
        put(tmp_path, "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt", data=b"% header only\n")
        put(tmp_path, "Session2/dialog/EmoEvaluation/Ses02F_impro01.txt", data=b"% header only\n")
    with pytest.raises(DatasetError) as info:
        make(case, tmp_path).utterances()
    assert str(info.value).startswith(f"{case.cls.name}: no utterances under {tmp_path.resolve()}")
    assert case.cls.how_to_get in str(info.value)


FILE_CASES = [c for c in CASES if c.cls is not IemocapDataset]


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.cls.name for c in FILE_CASES])
def test_hidden_and_macos_files_are_ignored(case: Case, tmp_path: Path) -> None:
    case.build(tmp_path)
    first = next(p for p in sorted(tmp_path.rglob("*")) if p.is_file() and p.suffix in (".wav", ".aiff"))
    rel = first.relative_to(tmp_path)
    put(tmp_path, f"__MACOSX/{rel}", f"{rel.parent}/._{rel.name}", f".trash/{rel}", data=b"\x00\x05\x16\x07")
    ds = make(case, tmp_path)
    assert [(u.id, u.label, u.speaker) for u in ds.utterances()] == case.expected
    assert ds.problems == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_component_metadata_and_registration(case: Case) -> None:
    cls = case.cls
    assert cls.language == case.language
    for attr in ("homepage", "licence", "citation", "how_to_get", "naming"):
        assert getattr(cls, attr).strip(), f"{cls.name}.{attr} is empty"
    assert cls.describe()
    assert all(f.description for f in cls.Params.model_fields.values())
    registry = Registry()
    registry.register(cls)
    assert registry.get("dataset", cls.name) is cls


def test_strict_error_lists_at_most_twenty_files(tmp_path: Path) -> None:
    emodb_tree(tmp_path)
    put(tmp_path, *(f"wav/junk{i:02d}.wav" for i in range(25)))
    with pytest.raises(DatasetError) as info:
        EmoDbDataset(root=str(tmp_path)).utterances()
    msg = str(info.value)
    assert msg.startswith(f"emodb: 25 file(s) under {tmp_path.resolve()} do not follow")
    assert "wav/junk19.wav: name does not follow the scheme" in msg
    assert "wav/junk20.wav" not in msg
    assert "... and 5 more" in msg


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    savee_tree(tmp_path)
    put(tmp_path, "ALL/DC_a01.wav")  # a flattened copy next to the speaker folders
    with pytest.raises(DatasetError, match=r"savee dataset .*: duplicate utterance ids \(1\): DC_a01"):
        SaveeDataset(root=str(tmp_path)).utterances()


def test_listing_does_not_decode_audio(tmp_path: Path) -> None:
    put(tmp_path, "DC/a01.wav", "KL/n02.wav", data=b"")  # empty files: names are all that matter
    assert triples(SaveeDataset(root=str(tmp_path))) == [("DC_a01", "angry", "DC"), ("KL_n02", "neutral", "KL")]


def test_components_import_no_heavy_library() -> None:
    mods = [c.cls.__module__ for c in CASES]
    script = "".join(f"import {m}\n" for m in mods) + (
        "import sys\n"
        "print(','.join(m for m in ('torch', 'numpy', 'librosa', 'sklearn') if m in sys.modules) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "none"


# ----------------------------------------------------------------------- corpus specifics
def test_emodb_meta(tmp_path: Path) -> None:
    emodb_tree(tmp_path)
    u = EmoDbDataset(root=str(tmp_path)).utterances()[0]
    assert u.path == str(tmp_path.resolve() / "wav" / "03a01Fa.wav")
    assert u.meta == {"text": "a01", "version": "a", "emotion_code": "F", "gender": "male"}


@pytest.mark.parametrize(
    ("intensity", "ids"),
    [
        ("strong", ["02-C-2-1", "07-D-2-3", "03-J-2-4", "04-N-5", "06-P-2-2"]),
        ("weak", ["01-C-1-1", "03-J-1-4", "04-N-5", "08-S-1-2", "05-T-1-6"]),
    ],
)
def test_cafe_intensity_keeps_neutral(intensity: str, ids: list[str], tmp_path: Path) -> None:
    cafe_tree(tmp_path)
    ds = CafeDataset(root=str(tmp_path), intensity=intensity)
    assert [u.id for u in ds.utterances()] == ids
    assert len(ds.excluded) == 9 - len(ids)


def test_cafe_meta_gender_and_intensity(tmp_path: Path) -> None:
    cafe_tree(tmp_path)
    by_id = {u.id: u for u in CafeDataset(root=str(tmp_path)).utterances()}
    assert by_id["01-C-1-1"].meta == {"emotion_code": "C", "intensity": "weak", "sentence": 1, "gender": "male"}
    assert by_id["02-C-2-1"].meta["gender"] == "female"
    assert by_id["04-N-5"].meta == {"emotion_code": "N", "sentence": 5, "gender": "female"}
    assert by_id["06-P-2-2"].path.endswith("Peur/Fort/06-P-2-2.aiff")


def test_iemocap_meta_and_duration(tmp_path: Path) -> None:
    iemocap_tree(tmp_path)
    u = IemocapDataset(root=str(tmp_path), sessions=[1, 2]).utterances()[0]
    assert u.path == str(tmp_path.resolve() / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")
    assert u.duration == pytest.approx(8.2357 - 6.2901)
    assert u.meta == {
        "session": 1,
        "dialog": "Ses01F_impro01",
        "dialog_type": "improvised",
        "gender": "female",
        "emotion_code": "neu",
        "start": 6.2901,
        "end": 8.2357,
        "vad": [2.5, 2.5, 2.5],
    }


def test_iemocap_excited_merge_sessions_and_dialog_filters(tmp_path: Path) -> None:
    iemocap_tree(tmp_path)
    no_exc = IemocapDataset(root=str(tmp_path), sessions=[1, 2], merge_excited=False)
    assert [t[0] for t in triples(no_exc)] == [t[0] for t in IEMOCAP if t[0] != "Ses01F_impro01_M000"]
    assert triples(IemocapDataset(root=str(tmp_path), sessions=[2])) == IEMOCAP[-2:]
    improvised = IemocapDataset(root=str(tmp_path), sessions=[1, 2], dialogs="improvised")
    assert [t[0] for t in triples(improvised)] == [t[0] for t in IEMOCAP if "impro" in t[0]]
    scripted = IemocapDataset(root=str(tmp_path), sessions=[1, 2], dialogs="scripted")
    assert [t[0] for t in triples(scripted)] == ["Ses01M_script01_1_F000", "Ses01M_script01_1_M000"]


def test_iemocap_other_labels_are_excluded_not_problems(tmp_path: Path) -> None:
    iemocap_tree(tmp_path)
    (tmp_path / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F001.wav").unlink()  # a 'fru' turn
    ds = IemocapDataset(root=str(tmp_path), sessions=[1, 2])
    assert triples(ds) == IEMOCAP
    assert ds.problems == []
    assert ds.excluded == [
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F001.wav",
        "Session1/sentences/wav/Ses01M_script01_1/Ses01M_script01_1_M001.wav",
    ]


def test_iemocap_missing_sessions_and_unknown_codes(tmp_path: Path) -> None:
    iemocap_tree(tmp_path)
    with pytest.raises(DatasetError) as info:
        IemocapDataset(root=str(tmp_path)).utterances()  # default: sessions 1-5
    msg = str(info.value)
    assert msg.startswith(f"iemocap: 3 problem(s) under {tmp_path.resolve()} (expected Session<n>/dialog/")
    assert msg.endswith(
        "list fewer sessions (e.g. sessions: [1, 2]), or set strict: false to skip the utterances concerned"
    )
    for s in (3, 4, 5):
        assert f"Session{s}/dialog/EmoEvaluation: folder missing (session {s} not unpacked?)" in msg

    rel = "Session2/dialog/EmoEvaluation/Ses02F_impro02.txt"
    put(tmp_path, rel, data=IEMOCAP_TXT[rel].replace("\tsad\t", "\tzzz\t").encode())
    ds = IemocapDataset(root=str(tmp_path), sessions=[1, 2], strict=False)
    assert triples(ds) == IEMOCAP[:-1]
    assert ds.problems == [
        "Session2/sentences/wav/Ses02F_impro02/Ses02F_impro02_M000.wav: unknown emotion code 'zzz' "
        "(expected one of ang, dis, exc, fea, fru, hap, neu, oth, sad, sur, xxx)"
    ]


def test_iemocap_sessions_are_validated() -> None:
    with pytest.raises(ValueError, match=r"sessions must be among 1-5, got \[6\]"):
        IemocapDataset(root="x", sessions=[1, 6])


@pytest.mark.parametrize(
    ("kwargs", "ids"),
    [
        ({"channel": "song"}, ["03-02-03-01-01-01-02", "03-02-04-02-02-02-24"]),
        (
            {"channel": "all"},
            [t[0] for t in RAVDESS[:4]]
            + ["03-02-03-01-01-01-02"]
            + [t[0] for t in RAVDESS[4:]]
            + ["03-02-04-02-02-02-24"],
        ),
        ({"include_calm": False}, [t[0] for t in RAVDESS if t[1] != "calm"]),
        (
            {"intensity": "strong"},
            ["03-01-01-01-01-01-01", "03-01-02-02-01-02-01", "03-01-05-02-02-01-02", "03-01-08-02-01-01-13"],
        ),
        ({"intensity": "normal"}, ["03-01-01-01-01-01-01", "03-01-05-01-02-01-02", "03-01-06-01-02-02-24"]),
    ],
)
def test_ravdess_filters(kwargs: dict[str, object], ids: list[str], tmp_path: Path) -> None:
    ravdess_tree(tmp_path)
    assert [t[0] for t in triples(RavdessDataset(root=str(tmp_path), **kwargs))] == ids


def test_ravdess_meta(tmp_path: Path) -> None:
    ravdess_tree(tmp_path)
    u = RavdessDataset(root=str(tmp_path)).utterances()[-1]
    assert u.meta == {
        "modality": "audio",
        "channel": "speech",
        "intensity": "normal",
        "statement": 2,
        "repetition": 2,
        "emotion_code": "06",
        "gender": "female",
    }


def test_savee_reads_flattened_copies(tmp_path: Path) -> None:
    put(tmp_path, "ALL/DC_a01.wav", "ALL/KL_sa15.wav", "ALL/JE_su02.wav")
    assert triples(SaveeDataset(root=str(tmp_path))) == [
        ("DC_a01", "angry", "DC"),
        ("JE_su02", "surprise", "JE"),
        ("KL_sa15", "sad", "KL"),
    ]


def test_aesdd_and_subesco_meta(tmp_path: Path) -> None:
    aesdd_tree(tmp_path / "aesdd")
    by_id = {u.id: u for u in AesddDataset(root=str(tmp_path / "aesdd")).utterances()}
    assert by_id["a06 (5)b"].meta == {"utterance": 6, "take": "b", "emotion_code": "a"}
    assert by_id["a01 (1)"].meta["take"] is None
    subesco_tree(tmp_path / "subesco")
    by_id = {u.id: u for u in SubescoDataset(root=str(tmp_path / "subesco")).utterances()}
    odd = by_id["F_02_MONIKA_S_2_SURPRISE_3"]
    assert odd.path.endswith("F_02_MONIKA_S_2_SURPRISE_3].wav")
    assert odd.meta == {
        "speaker_name": "MONIKA",
        "sentence": 2,
        "take": 3,
        "emotion_code": "SURPRISE",
        "gender": "female",
    }


def test_tess_and_emovo_and_shemo_meta(tmp_path: Path) -> None:
    tess_tree(tmp_path / "tess")
    by_id = {u.id: u for u in TessDataset(root=str(tmp_path / "tess")).utterances()}
    assert by_id["OA_bite_neutral"].meta == {"word": "bite", "emotion_code": "neutral", "gender": "female"}
    assert {u.speaker for u in by_id.values()} == {"OAF", "YAF"}
    emovo_tree(tmp_path / "emovo")
    genders = {u.speaker: u.meta["gender"] for u in EmovoDataset(root=str(tmp_path / "emovo")).utterances()}
    assert genders == {"f1": "female", "f2": "female", "m1": "male", "m2": "male", "m3": "male"}
    shemo_tree(tmp_path / "shemo")
    genders = {u.speaker: u.meta["gender"] for u in ShemoDataset(root=str(tmp_path / "shemo")).utterances()}
    assert genders == {"F01": "female", "F12": "female", "M05": "male", "M56": "male"}


def test_root_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    put(tmp_path, "emodb.zip", data=b"PK")
    with pytest.raises(DatasetError, match=r"^emodb: root .*emodb\.zip is not a folder; how to get it: download"):
        EmoDbDataset(root=str(tmp_path / "emodb.zip")).utterances()


def test_calling_twice_resets_problems(tmp_path: Path) -> None:
    shemo_tree(tmp_path)
    put(tmp_path, "male/notes.wav")
    ds = ShemoDataset(root=str(tmp_path), strict=False)
    ds.utterances()
    (tmp_path / "male/notes.wav").unlink()
    shutil.rmtree(tmp_path / "female")
    assert triples(ds) == SHEMO[3:]
    assert ds.problems == []
