"""``serkit compare``: one table of several runs (rows) by domain (columns), UA / WA."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from serkit.errors import SerkitError

__all__ = ["compare_table", "load_results"]


def load_results(run_dir: str | Path) -> dict[str, Any]:
    """Read ``results.json`` of a run folder (SerkitError naming the folder if absent)."""
    path = Path(run_dir) / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SerkitError(f"{run_dir}: no results.json (not a finished serkit run folder)") from None
    except json.JSONDecodeError as err:
        raise SerkitError(f"{path}: not valid JSON ({err.msg})") from None


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

    Args:
        runs: ``(row name, results.json mapping)`` pairs, in row order.
        fmt: ``markdown`` (cells "UA / WA", mean ± std) or ``csv`` (one column per
            domain and metric, plus std columns).
        std: include the std over runs in markdown cells.
    """
    domains: list[str] = []
    for _, res in runs:
        for d in res["domains"]:
            if d not in domains:
                domains.append(d)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        header = ["run", "protocol", "n_runs"]
        for d in domains:
            header += [f"{d}_ua", f"{d}_ua_std", f"{d}_wa", f"{d}_wa_std"]
        w.writerow(header)
        for name, res in runs:
            row: list[Any] = [name, res.get("protocol", ""), res.get("n_runs", "")]
            for d in domains:
                m = res["domains"].get(d)
                if m is None:
                    row += ["", "", "", ""]
                else:
                    row += [m["ua"]["mean"], m["ua"]["std"], m["wa"]["mean"], m["wa"]["std"]]
            w.writerow(row)
        return buf.getvalue()
    protocols = sorted({str(res.get("protocol")) for _, res in runs})
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
    n_runs = sorted({str(res.get("n_runs")) for _, res in runs})
    lines += [
        "",
        f"protocol: {', '.join(protocols)}; runs per row: {', '.join(n_runs)}; mean ± sample std over runs.",
    ]
    return "\n".join(lines) + "\n"
