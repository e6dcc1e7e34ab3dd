"""Paired significance of differences between runs, checked against scipy on hand-made run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats

from serkit.errors import SerkitError
from serkit.report.significance import difference, differences, differences_csv, differences_markdown
from serkit.testing.cli import run_cli

A_UA = [0.61, 0.55, 0.70, 0.64, 0.58]
B_UA = [0.57, 0.54, 0.66, 0.60, 0.59]
KEYS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]  # (repeat, fold)


def results(ua: list[float], keys: list[tuple[int, int]] = KEYS, seed: int = 0, domain: str = "xa") -> dict:
    runs = [
        {"id": f"r{r}-f{f}", "repeat": r, "fold": f, "test": {domain: {"ua": u, "wa": u + 0.01, "macro_f1": u}}}
        for (r, f), u in zip(keys, ua, strict=True)
    ]
    mean = sum(ua) / len(ua)
    return {
        "recipe": "hand",
        "protocol": "speaker",
        "protocol_params": {"type": "speaker", "k": 3},
        "seed": seed,
        "n_runs": len(ua),
        "domains": {domain: {"ua": {"mean": mean, "std": 0.0}, "wa": {"mean": mean + 0.01, "std": 0.0}}},
        "runs": runs,
    }


def write_run(folder: Path, res: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(res))
    return folder


def test_paired_difference_matches_scipy_ttest_rel() -> None:
    # B's runs in another order: pairing is by (repeat, fold), not by position
    order = [3, 0, 4, 1, 2]
    b = results([B_UA[i] for i in order], [KEYS[i] for i in order])
    d = difference(("A", results(A_UA)), ("B", b), "xa")
    assert d is not None
    ref = stats.ttest_rel(A_UA, B_UA)
    ci = ref.confidence_interval(0.95)
    assert (d.kind, d.test, d.n_pairs, d.n_a, d.n_b) == ("paired", "paired t-test", 5, 5, 5)
    assert d.mean == pytest.approx(0.024, abs=1e-12)
    assert d.p == pytest.approx(ref.pvalue, rel=1e-12) and d.p == pytest.approx(0.0801566742, rel=1e-9)
    assert (d.ci_low, d.ci_high) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))
    assert d.note == "" and not d.significant(0.05) and d.significant(0.1)


def test_unpaired_fallback_is_welch_and_labelled() -> None:
    d = difference(("A", results(A_UA)), ("B", results(B_UA, seed=1)), "xa")
    assert d is not None
    ref = stats.ttest_ind(A_UA, B_UA, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (d.kind, d.test, d.n_pairs) == ("unpaired", "Welch t-test", 0)
    assert d.p == pytest.approx(ref.pvalue, rel=1e-10) and d.p == pytest.approx(0.4834309541, rel=1e-9)
    assert (d.ci_low, d.ci_high) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))
    assert d.note == "not paired: different seeds"
    # runs that share fewer than 2 (repeat, fold) cannot be paired either
    few = difference(("A", results(A_UA[:3], KEYS[:3])), ("B", results(B_UA[3:], KEYS[3:])), "xa")
    assert few is not None and few.kind == "unpaired"
    assert few.note == "not paired: 0 shared (repeat, fold); few runs (3 and 2): low power"


def test_few_runs_partial_pairs_and_degenerate_cases() -> None:
    d = difference(("A", results(A_UA[:3], KEYS[:3])), ("B", results(B_UA)), "xa")
    assert d is not None and d.kind == "paired" and d.n_pairs == 3
    assert d.p == pytest.approx(stats.ttest_rel(A_UA[:3], B_UA[:3]).pvalue, rel=1e-12)
    assert d.note == "2 run(s) without a partner left out; few runs (3): low power"
    same = difference(("A", results([0.5, 0.6], KEYS[:2])), ("B", results([0.4, 0.5], KEYS[:2])), "xa")
    assert same is not None and same.p is None and same.mean == pytest.approx(0.1)
    assert (same.ci_low, same.ci_high) == (pytest.approx(0.1), pytest.approx(0.1))
    assert same.note == "few runs (2): low power; all differences equal: no test"
    assert difference(("A", results(A_UA)), ("B", results(B_UA, domain="xb")), "xa") is None
    with pytest.raises(SerkitError, match=r"^metric must be one of ua, wa, macro_f1; got 'f1'$"):
        difference(("A", results(A_UA)), ("B", results(B_UA)), "xa", metric="f1")


def test_markdown_marks_significant_rows_and_csv_holds_the_numbers() -> None:
    strong = [u + 0.05 + 0.001 * i for i, u in enumerate(B_UA)]
    rows = [("A", results(A_UA)), ("B", results(B_UA)), ("C", results(strong))]
    diffs = differences(rows)
    assert [(d.a, d.b) for d in diffs] == [("A", "B"), ("A", "C"), ("B", "C")]
    md = differences_markdown(diffs, alpha=0.05).splitlines()
    assert md[0] == "## Differences (UA, A − B)"
    assert md[2] == "| A − B | domain | runs | mean ΔUA | 95 % CI | p | test | significant (α = 0.05) | note |"
    assert md[4] == "| A − B | xa | 5 pairs | +0.0240 | [-0.0046, +0.0526] | 0.0802 | paired t-test | no |  |"
    assert md[6] == "| B − C | xa | 5 pairs | -0.0520 | [-0.0540, -0.0500] | < 0.0001 | paired t-test | **yes** |  |"
    assert [(d.a, d.b) for d in differences(rows, against="C")] == [("A", "C"), ("B", "C")]
    with pytest.raises(SerkitError, match=r"'D': not one of the runs compared \(A, B, C\)"):
        differences(rows, against="D")
    text = differences_csv(diffs).splitlines()
    assert text[0] == "a,b,domain,metric,kind,test,n_a,n_b,n_pairs,mean,ci_low,ci_high,p,significant,note"
    assert text[1].startswith("A,B,xa,ua,paired,paired t-test,5,5,5,0.024")
    assert text[3].split(",")[-2] == "True"


def test_compare_command_prints_differences_and_pairs_sweeps_by_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a = write_run(tmp_path / "a", results(A_UA))
    b = write_run(tmp_path / "b", results(B_UA))
    out_csv = tmp_path / "d.csv"
    assert run_cli(["compare", str(a), str(b), "--differences-csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "## Differences (UA, A − B)" in printed
    assert "| a − b | xa | 5 pairs | +0.0240 | [-0.0046, +0.0526] | 0.0802 | paired t-test | no |  |" in printed
    assert out_csv.read_text().splitlines()[1].startswith("a,b,xa,ua,paired")
    # two sweep folders: each variant against the same variant of the other sweep
    for sweep, shift in (("s1", 0.0), ("s2", 0.1)):
        for variant in ("SB", "MMoE"):
            write_run(tmp_path / sweep / variant, results([u + shift for u in A_UA]))
    assert run_cli(["compare", str(tmp_path / "s1"), str(tmp_path / "s2"), "--metric", "wa"]) == 0
    printed = capsys.readouterr().out
    rows = [ln for ln in printed.splitlines() if ln.startswith("| s1/")]
    assert rows[0].startswith("| s1/MMoE | ") and rows[1].startswith("| s1/SB | ")  # the table
    diff_rows = rows[2:]
    assert [r.split(" | ")[0] for r in diff_rows] == ["| s1/MMoE − s2/MMoE", "| s1/SB − s2/SB"]
    assert all(" | -0.1000 | [-0.1000, -0.1000] | - | paired t-test | no |" in r for r in diff_rows)
    assert "## Differences (WA, A − B)" in printed


def test_sweep_table_marks_significant_differences(tmp_path: Path) -> None:
    from serkit.engine.sweep import run_sweep

    (tmp_path / "r.yaml").write_text(
        "name: r\ndomains: {xa: {dataset: {type: synthetic, languages: [xa]}}}\n"
        "features: {mfcc: {extractor: {type: mfcc}, encoder: {type: mean_pool}}}\n"
    )
    (tmp_path / "s.yaml").write_text(
        "name: s\nrecipe: r.yaml\nalpha: 0.1\nvariants: {Base: {set: []}, Better: {set: []}, Same: {set: []}}\n"
    )
    out = tmp_path / "out"
    write_run(out / "Base", results(B_UA))  # finished variants are not run again
    write_run(out / "Better", results(A_UA))
    write_run(out / "Same", results([u + 0.001 * (-1) ** i for i, u in enumerate(B_UA)]))
    run_sweep(tmp_path / "s.yaml", out, progress=False)
    table = (out / "table.md").read_text().splitlines()
    rows = {ln.split(" | ")[0]: ln for ln in table if " − " in ln and ln.startswith("| ") and "domain" not in ln}
    assert rows["| Base − Better"].endswith("| 0.0802 | paired t-test | **yes** |  |")  # p < alpha = 0.1
    assert rows["| Base − Same"].endswith("| paired t-test | no |  |")
    assert "| A − B | domain | runs | mean ΔUA | 95 % CI | p | test | significant (α = 0.1) | note |" in table
    csv_rows = (out / "differences.csv").read_text().splitlines()
    assert len(csv_rows) == 4 and csv_rows[1].startswith("Base,Better,xa,ua,paired")
