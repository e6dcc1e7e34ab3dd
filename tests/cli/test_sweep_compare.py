from __future__ import annotations

import json
from pathlib import Path

from serkit.cli.main import main
from serkit.report.compare import compare_table


def fake(ua: float, wa: float, domains: tuple[str, ...] = ("en", "de")) -> dict:
    return {
        "protocol": "speaker",
        "n_runs": 2,
        "domains": {
            d: {"ua": {"mean": ua + i / 10, "std": 0.01}, "wa": {"mean": wa + i / 10, "std": 0.02}}
            for i, d in enumerate(domains)
        },
    }


def test_compare_markdown_and_csv() -> None:
    rows = [("SB", fake(0.5, 0.6)), ("Ours", fake(0.7, 0.75, ("en", "fr")))]
    md = compare_table(rows, "markdown")
    assert md.splitlines()[:4] == [
        "| run | en UA / WA | de UA / WA | fr UA / WA |",
        "| --- | --- | --- | --- |",
        "| SB | 0.5000 ± 0.0100 / 0.6000 ± 0.0200 | 0.6000 ± 0.0100 / 0.7000 ± 0.0200 | - |",
        "| Ours | 0.7000 ± 0.0100 / 0.7500 ± 0.0200 | - | 0.8000 ± 0.0100 / 0.8500 ± 0.0200 |",
    ]
    assert "protocol: speaker; runs per row: 2" in md
    csv_text = compare_table(rows, "csv").splitlines()
    assert csv_text[0] == (
        "run,protocol,n_runs,en_ua,en_ua_std,en_wa,en_wa_std,de_ua,de_ua_std,de_wa,de_wa_std,"
        "fr_ua,fr_ua_std,fr_wa,fr_wa_std"
    )
    assert csv_text[1].startswith("SB,speaker,2,0.5,0.01,0.6,0.02,0.6,0.01,0.7")


SWEEP_RECIPE = """\
name: tiny
protocol: {type: speaker, k: 3, folds: [0]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 4}}
  xb: {dataset: {type: synthetic, languages: [xb], speakers: 6, per_class: 4, emotions: [angry, sad, fear]}}
features:
  mfcc: {extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}, encoder: {type: mean_pool, stats: true}}
heads: {default: {type: mlp, hidden: [16]}}
train: {epochs: 2, batch_size: 16}
"""

SWEEP = """\
name: tiny_sweep
recipe: tiny.yaml
variants:
  Shared:
    set: [domains.xa.head=all, domains.xb.head=all, "heads={all: {type: mlp, hidden: [16]}}"]
  PerDomain: {set: []}
  OnlyA: {unset: [domains.xb]}
"""


def test_sweep_runs_variants_writes_tables_and_resumes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tiny.yaml").write_text(SWEEP_RECIPE)
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    out = tmp_path / "out"
    try:
        main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), "--quiet"])
    except SystemExit as e:
        assert not e.code
    table = (out / "table.md").read_text()
    assert table.startswith("# tiny_sweep\n")
    lines = table.splitlines()
    assert lines[2] == "| run | xa UA / WA | xb UA / WA |"
    assert [ln.split(" |")[0] for ln in lines[4:7]] == ["| Shared", "| PerDomain", "| OnlyA"]
    assert lines[6].endswith("| - |")  # OnlyA has no xb
    shared = json.loads((out / "Shared" / "results.json").read_text())
    assert shared["domains"]["xb"]["labels"] == ["angry", "fear", "happy", "neutral", "sad"]
    assert "| PerDomain |" in capsys.readouterr().out
    # finished variants are not rerun
    stamp = (out / "PerDomain" / "results.json").stat().st_mtime_ns
    main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), "--quiet"])
    assert (out / "PerDomain" / "results.json").stat().st_mtime_ns == stamp
    # compare reads the same folders
    capsys.readouterr()
    main(["compare", str(out / "Shared"), str(out / "PerDomain"), "--no-std"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "| run | xa UA / WA | xb UA / WA |"
    assert printed[2].startswith("| Shared | ")


def test_compare_shows_the_linear_reference_beside_each_run() -> None:
    with_ref = fake(0.5, 0.6, ("en",)) | {
        "reference": {"en": {"kind": "logreg", "ua": {"mean": 0.55, "std": 0.03}, "wa": {"mean": 0.65, "std": 0.04}}}
    }
    rows = [("SB", with_ref), ("Old", fake(0.7, 0.75, ("en",)))]
    md = compare_table(rows, "markdown").splitlines()
    assert md[2:4] == ["| SB | 0.5000 ± 0.0100 / 0.6000 ± 0.0200 |", "| Old | 0.7000 ± 0.0100 / 0.7500 ± 0.0200 |"]
    assert md[-5] == "Linear reference of each run (on its streams and splits): reference UA (model UA − reference UA)"
    assert md[-3:] == ["| run | en reference UA |", "| --- | --- |", "| SB (logreg) | 0.5500 ± 0.0300 (-0.0500) |"]
    csv_lines = compare_table(rows, "csv").splitlines()
    assert csv_lines[0] == "run,protocol,n_runs,en_ua,en_ua_std,en_wa,en_wa_std,en_ref_ua,en_ref_wa"
    assert csv_lines[1].endswith(",0.55,0.65")
    assert csv_lines[2].endswith(",,")
