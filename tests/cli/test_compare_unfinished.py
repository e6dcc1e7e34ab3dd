"""``serkit compare`` with an unfinished run among the rows, and CSV values rounded (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serkit.testing.cli import run_cli


def _finished(folder: Path, ua: float) -> Path:
    folder.mkdir()
    stat = {"mean": ua, "std": 0.1 + 0.2, "values": [ua]}
    results = {"protocol": "speaker", "n_runs": 2, "domains": {"xa": {"ua": stat, "wa": stat}}, "runs": []}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_an_unfinished_run_is_a_row_not_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _finished(tmp_path / "a", 0.6499999999999999)
    b = tmp_path / "b"
    (b / "runs").mkdir(parents=True)
    (b / "recipe.yaml").write_text("name: b\n")
    (b / "runs" / "r0-f0.json").write_text("{}")
    assert run_cli(["compare", str(a), str(b), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "run,protocol,n_runs,xa_ua,xa_ua_std,xa_wa,xa_wa_std",
        "a,speaker,2,0.65,0.3,0.65,0.3",
        "b (unfinished: 1 run(s) done),unfinished,1,,,,",
    ]
    assert run_cli(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| a | 0.6500 ± 0.3000 / 0.6500 ± 0.3000 |" in out
    assert "| b (unfinished: 1 run(s) done) | - |" in out
    assert "protocol: speaker; runs per row: 2;" in out
    # a folder that is no run folder at all is still an error
    (tmp_path / "c").mkdir()
    assert run_cli(["compare", str(a), str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'c'}: no results.json (not a finished serkit run folder)\n"
