"""``serkit compare``: one table of several runs (rows) by domain (columns), UA / WA.

A run folder whose run has not finished (no ``results.json`` yet, but its recipe) is a row
marked unfinished, not an error that hides the other rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from serkit.errors import SerkitError

__all__ = ["compare_table", "load_results"]


#: Places of a CSV float (metrics are fractions: 4 places are 0.01 percentage points).
CSV_DIGITS = 4


def load_results(run_dir: str | Path, unfinished: bool = False) -> dict[str, Any]:
    """Read ``results.json`` of a run folder (SerkitError naming the folder if absent).

    Args:
        unfinished: for a run folder without ``results.json`` whose run has started (it
            has ``recipe.yaml``), return ``{"unfinished": True, "n_runs": N, "domains": {}}``
            (N: its finished runs, ``runs/*.json``) instead of raising.
    """
    path = Path(run_dir) / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if unfinished and (Path(run_dir) / "recipe.yaml").is_file():
            from serkit.engine.run_folder import run_records

            done = len(run_records(Path(run_dir)))
            return {"unfinished": True, "protocol": "unfinished", "n_runs": done, "domains": {}}
        raise SerkitError(f"{run_dir}: no results.json (not a finished serkit run folder)") from None
    except json.JSONDecodeError as err:
        raise SerkitError(f"{path}: not valid JSON ({err.msg})") from None


def _round(value: Any) -> Any:
    return round(value, CSV_DIGITS) if isinstance(value, float) else value


def _cell(stat: dict[str, Any] | None, std: bool) -> str:
    if stat is None:
        return "-"
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}" if std else f"{stat['mean']:.4f}"


def compare_table(
    runs: Sequence[tuple[str, dict[str, Any]]],
    fmt: Literal["markdown", "csv"] = "markdown",
    std: bool = True,
) -> str:
    """Rows = runs, columns = the union of their domains, cells ``UA / WA``.

    A run with a linear reference (``results.json``'s ``reference``) gets it beside it: a
    row under the run's in markdown, ``<domain>_ref_ua`` / ``_ref_wa`` columns in csv
    (when any run has one).

    Args:
        runs: ``(row name, results.json mapping)`` pairs, in row order.
        fmt: ``markdown`` (cells "UA / WA", mean ± std) or ``csv`` (one column per
            domain and metric, plus std columns).
        std: include the std over runs in markdown cells.
    """
    runs = [(f"{n} (unfinished: {r['n_runs']} run(s) done)", r) if r.get("unfinished") else (n, r) for n, r in runs]
    domains: list[str] = []
    for _, res in runs:
        for d in res["domains"]:
            if d not in domains:
                domains.append(d)
    if fmt == "csv":
        with_ref = any(res.get("reference") for _, res in runs)
        buf = io.StringIO()
        w = csv.writer(buf)
        header = ["run", "protocol", "n_runs"]
        for d in domains:
            header += [f"{d}_ua", f"{d}_ua_std", f"{d}_wa", f"{d}_wa_std"]
            header += [f"{d}_ref_ua", f"{d}_ref_wa"] if with_ref else []
        w.writerow(header)
        for name, res in runs:
            row: list[Any] = [name, res.get("protocol", ""), res.get("n_runs", "")]
            for d in domains:
                m = res["domains"].get(d)
                ref = (res.get("reference") or {}).get(d)
                if m is None:
                    row += ["", "", "", ""]
                else:
                    row += [m["ua"]["mean"], m["ua"]["std"], m["wa"]["mean"], m["wa"]["std"]]
                if with_ref:
                    row += ["", ""] if ref is None else [ref["ua"]["mean"], ref["wa"]["mean"]]
            w.writerow([_round(v) for v in row])  # 0.65, not 0.6499999999999999
        return buf.getvalue()
    protocols = sorted({str(res.get("protocol")) for _, res in runs if not res.get("unfinished")})
    lines = [
        "| run | " + " | ".join(f"{d} UA / WA" for d in domains) + " |",
        "| --- | " + " | ".join("---" for _ in domains) + " |",
    ]
    for name, res in runs:
        cells = []
        for d in domains:
            m = res["domains"].get(d)
            cells.append("-" if m is None else f"{_cell(m['ua'], std)} / {_cell(m['wa'], std)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    n_runs = sorted({str(res.get("n_runs")) for _, res in runs if not res.get("unfinished")})
    lines += [
        "",
        f"protocol: {', '.join(protocols)}; runs per row: {', '.join(n_runs)}; mean ± sample std over runs.",
    ]
    return "\n".join(lines + _reference_table(runs, domains, std)) + "\n"


def _reference_table(runs: Sequence[tuple[str, dict[str, Any]]], domains: list[str], std: bool) -> list[str]:
    """Markdown: each run's linear reference UA per domain, and the model's UA minus it."""
    with_ref = [(name, res) for name, res in runs if res.get("reference")]
    if not with_ref:
        return []
    lines = [
        "",
        "Linear reference of each run (on its streams and splits): reference UA (model UA − reference UA)",
        "",
        "| run | " + " | ".join(f"{d} reference UA" for d in domains) + " |",
        "| --- | " + " | ".join("---" for _ in domains) + " |",
    ]
    for name, res in with_ref:
        cells = []
        for d in domains:
            ref, model = res["reference"].get(d), res["domains"].get(d)
            if ref is None or model is None:
                cells.append("-")
            else:
                cells.append(f"{_cell(ref['ua'], std)} ({model['ua']['mean'] - ref['ua']['mean']:+.4f})")
        kind = next(iter(res["reference"].values()))["kind"]
        lines.append(f"| {name} ({kind}) | " + " | ".join(cells) + " |")
    return lines
