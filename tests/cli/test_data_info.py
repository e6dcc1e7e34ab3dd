"""``serkit data info``: counts, durations, sample rates and problems of fake corpora with real WAVs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.cli.main import main
from serkit.data.info import corpus_info, open_dataset
from serkit.errors import RecipeError


def wav(path: Path, seconds: float, rate: int, *, silent: bool = False, channels: int = 1) -> None:
    """A real PCM-16 WAV of exactly ``round(seconds * rate)`` frames."""
    frames = round(seconds * rate)
    rng = np.random.default_rng(frames)
    x = np.zeros((frames, channels), "float32") if silent else 0.1 * rng.standard_normal((frames, channels))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype("float32"), rate, subtype="PCM_16")


def junk(path: Path, data: bytes = b"this is not audio") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def savee_tree(root: Path) -> None:
    wav(root / "DC/a01.wav", 0.5, 16000)
    wav(root / "DC/h02.wav", 0.25, 8000)
    wav(root / "DC/a03.wav", 0.75, 16000, channels=2)
    wav(root / "JE/sa01.wav", 1.0, 16000)
    junk(root / "JE/n02.wav")  # well named, unreadable
    wav(root / "JE/x05.wav", 0.3, 16000)  # unknown emotion code: never read
    junk(root / "Info.txt", b"not an audio extension: ignored")


def emodb_tree(root: Path) -> None:
    wav(root / "wav/03a01Fa.wav", 0.3, 16000)
    wav(root / "wav/03a02Wa.wav", 0.6, 8000)
    wav(root / "wav/08b01Tb.wav", 0.2, 16000, silent=True)
    wav(root / "wav/08b02Wa.wav", 0.4, 16000)
    junk(root / "wav/09a05Nc.wav", b"RIFF\x00\x00\x00\x00WAVE")  # truncated header
    wav(root / "wav/10a01Qa.wav", 0.3, 16000)  # unknown emotion letter Q
    junk(root / "lablaut/03a01Fa.lab", b"labels")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["data", "info", *args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_savee_json_counts_durations_rates_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "savee"
    savee_tree(root)
    info = run_json(capsys, "savee", "--root", str(root))

    assert info["dataset"] == "savee"
    assert info["strict_relaxed"] is True
    assert info["params"] == {"root": str(root), "strict": False}
    assert info["utterances"] == 5
    assert info["speakers"] == {
        "count": 2,
        "min": 2,
        "median": 2.5,
        "mean": 2.5,
        "max": 3,
        "per_speaker": {"DC": 3, "JE": 2},
    }
    assert info["emotions"] == {"angry": 2, "happy": 1, "neutral": 1, "sad": 1}
    assert info["languages"] == {"en": 5}
    audio = info["audio"]
    assert audio["readable"] == 4
    dur = audio["duration"]
    assert dur["total"] == pytest.approx(0.5 + 0.25 + 0.75 + 1.0, abs=1e-3)
    assert dur["mean"] == pytest.approx(2.5 / 4, abs=1e-3)
    assert dur["min"] == pytest.approx(0.25, abs=1e-3)
    assert dur["max"] == pytest.approx(1.0, abs=1e-3)
    assert audio["sample_rates"] == {"8000": 1, "16000": 3}
    assert audio["channels"] == {"1": 3, "2": 1}
    assert audio["decoded"] is False

    problems = info["problems"]
    assert problems["count"] == 2
    assert len(problems["unreadable"]) == 1
    assert problems["unreadable"][0].startswith(f"{root / 'JE/n02.wav'}: not a readable audio file (")
    assert problems["naming"] == ["JE/x05.wav: unknown emotion code 'x' (expected one of a, d, f, h, n, sa, su)"]
    assert problems["decode"] == []
    assert problems["unknown_labels"] == {}
    assert info["excluded"] == 0


def test_emodb_json_with_decode_finds_the_silent_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "emodb"
    emodb_tree(root)
    info = run_json(capsys, "emodb", "--root", str(root), "--decode")

    assert info["utterances"] == 5
    assert info["speakers"]["count"] == 3
    assert info["speakers"]["per_speaker"] == {"03": 2, "08": 2, "09": 1}
    assert info["emotions"] == {"angry": 2, "happy": 1, "neutral": 1, "sad": 1}
    audio = info["audio"]
    assert audio["readable"] == 4
    assert audio["duration"]["total"] == pytest.approx(1.5, abs=1e-3)
    assert audio["duration"]["min"] == pytest.approx(0.2, abs=1e-3)
    assert audio["duration"]["max"] == pytest.approx(0.6, abs=1e-3)
    assert audio["sample_rates"] == {"8000": 1, "16000": 3}
    assert audio["decoded"] is True

    problems = info["problems"]
    assert len(problems["unreadable"]) == 1
    assert problems["unreadable"][0].startswith(f"{root / 'wav/09a05Nc.wav'}: not a readable audio file (")
    assert problems["naming"] == ["wav/10a01Qa.wav: unknown emotion letter 'Q' (expected one of WLEAFTN)"]
    assert problems["decode"] == [f"{root / 'wav/08b01Tb.wav'}: audio is all zeros (digital silence)"]
    assert problems["count"] == 3


def test_table_output_lists_problems_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "savee"
    savee_tree(root)
    code, out, _ = run(capsys, "savee", "--root", str(root))
    assert code == 0
    assert "utterances" in out and "8000 Hz: 1, 16000 Hz: 3" in out
    assert "2 problem(s):" in out
    assert "JE/x05.wav: unknown emotion code 'x'" in out
    assert "JE/n02.wav: not a readable audio file" in out
    assert str(root / "JE") not in out  # paths shown relative to the root
    assert "read with strict: false" in out


def test_no_problems_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "emodb"
    wav(root / "wav/03a01Fa.wav", 0.2, 16000)
    wav(root / "wav/08a01Wa.wav", 0.2, 16000)
    code, out, _ = run(capsys, "emodb", "--root", str(root), "--decode")
    assert code == 0
    assert "no problems found" in out


def test_explicit_strict_true_fails_on_the_misnamed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "savee"
    savee_tree(root)
    code, _, err = run(capsys, "savee", "--root", str(root), "--set", "strict=true")
    assert code == 2
    assert err.startswith("error: savee: 1 file(s) under")
    assert "JE/x05.wav: unknown emotion code 'x'" in err


def test_missing_root_and_unknown_dataset_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, out, err = run(capsys, "savee", "--root", str(missing))
    assert code == 2 and out == ""
    assert err.startswith(f"error: savee: root {missing} does not exist; how to get it: register at ")

    code, _, err = run(capsys, "savy", "--root", str(tmp_path))
    assert code == 2
    assert "unknown dataset type 'savy'; available: " in err and "did you mean 'savee'?" in err


def test_manifest_via_set_path_and_unknown_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav(tmp_path / "a.wav", 0.5, 16000)
    wav(tmp_path / "b.wav", 0.25, 22050)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker\na.wav,anger,s1\nb.wav,grumpy,s2\n", encoding="utf-8")
    info = run_json(capsys, "manifest", "--set", f"path={manifest}")
    assert info["strict_relaxed"] is False  # manifest has no strict parameter
    assert info["emotions"] == {"angry": 1, "grumpy": 1}
    assert info["problems"]["unknown_labels"] == {"grumpy": 1}
    assert info["audio"]["sample_rates"] == {"16000": 1, "22050": 1}
    assert info["audio"]["duration"]["total"] == pytest.approx(0.75, abs=1e-3)

    code, _, err = run(capsys, "manifest")
    assert code == 2
    assert err == (
        "error: dataset 'manifest': 1 invalid parameter(s):\n"
        "  path: required parameter is missing (give it with --set path=VALUE)\n"
    )


def test_open_dataset_errors_and_yaml_values(tmp_path: Path) -> None:
    ds, relaxed = open_dataset("iemocap", str(tmp_path), ["sessions=[2, 1]", "dialogs=scripted"])
    assert relaxed is True
    assert ds.params.sessions == [1, 2] and ds.params.dialogs == "scripted" and ds.params.strict is False

    with pytest.raises(RecipeError) as err:
        open_dataset("savee", str(tmp_path), ["colour=red"])
    assert str(err.value) == (
        "dataset 'savee': 1 invalid parameter(s):\n  colour: unknown parameter; savee parameters: root, strict"
    )
    with pytest.raises(RecipeError, match=r"^--set 'strict': expected KEY=VALUE"):
        open_dataset("savee", str(tmp_path), ["strict"])


def test_progress_callback_sees_every_file(tmp_path: Path) -> None:
    root = tmp_path / "savee"
    savee_tree(root)
    ds, relaxed = open_dataset("savee", str(root))
    calls: list[tuple[str, int, int]] = []
    summary = corpus_info(ds, decode=True, strict_relaxed=relaxed, workers=2, progress=lambda *a: calls.append(a))
    headers = [c for c in calls if c[0] == "headers"]
    decode = [c for c in calls if c[0] == "decode"]
    assert headers[0] == ("headers", 0, 5) and headers[-1] == ("headers", 5, 5) and len(headers) == 6
    assert decode[0] == ("decode", 0, 4) and decode[-1] == ("decode", 4, 4)
    assert summary.problem_count == 2
