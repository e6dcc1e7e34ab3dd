"""The paper's Fig. 4: gate weights beside single-stream UA (``serkit report --single-stream``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from serkit.errors import SerkitError

STREAMS = ["mfcc", "ge2e", "w2v"]


def _domain(ua: float, std: float, gates: list[float] | None) -> dict[str, Any]:
    m: dict[str, Any] = {
        "ua": {"mean": ua, "std": std, "values": [ua - std, ua + std]},
        "wa": {"mean": ua, "std": 0.0, "values": [ua, ua]},
        "macro_f1": {"mean": ua, "std": 0.0, "values": [ua, ua]},
        "n_test": 12,
        "labels": ["angry", "sad"],
        "confusion": [[5, 1], [2, 4]],
        "n_utterances": 60,
        "n_speakers": 4,
    }
    if gates is not None:
        m["gates"] = {"streams": STREAMS, "mean": gates, "std": [0.01, 0.01, 0.01]}
    return m


def _write_run(folder: Path, streams: list[str], domains: dict[str, dict[str, Any]]) -> Path:
    folder.mkdir(parents=True)
    results = {
        "recipe": folder.name,
        "protocol": "speaker",
        "repeats": 2,
        "folds": 1,
        "n_runs": 2,
        "seed": 0,
        "device": "cpu",
        "started": "2024-01-01T00:00:00",
        "wall_seconds": 3.0,
        "domains": domains,
        "extraction": {},
        "n_bad_files": 0,
        "runs": [],
    }
    (folder / "results.json").write_text(json.dumps(results))
    recipe = {"name": folder.name, "features": {s: {} for s in streams}}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    return {
        "gated": _write_run(
            tmp_path / "GatedNAS",
            STREAMS,
            {"en": _domain(0.71, 0.02, [0.5, 0.2, 0.3]), "de": _domain(0.82, 0.01, [0.1, 0.3, 0.6])},
        ),
        "mfcc": _write_run(
            tmp_path / "mfcc", ["mfcc"], {"en": _domain(0.64, 0.03, None), "de": _domain(0.55, 0.02, None)}
        ),
        "w2v": _write_run(
            tmp_path / "w2v", ["w2v"], {"en": _domain(0.61, 0.01, None), "de": _domain(0.79, 0.04, None)}
        ),
        "both": _write_run(tmp_path / "both", ["mfcc", "w2v"], {"en": _domain(0.7, 0.0, None)}),
    }


def _invoke(args: list[str]) -> Any:
    from serkit.cli.report_cmd import report

    return CliRunner().invoke(report, args)


def _width(path: Path) -> int:
    import matplotlib.image as mpimg

    return int(mpimg.imread(path).shape[1])


def test_single_stream_panel_table_and_record(runs: dict[str, Path]) -> None:
    gated = runs["gated"]
    res = _invoke([str(gated)])
    assert res.exit_code == 0, res.output
    narrow = _width(gated / "plots" / "gates.png")
    assert "single-stream" not in (gated / "report.html").read_text()

    res = _invoke([str(gated), "--single-stream", f"mfcc={runs['mfcc']}", "--single-stream", f"w2v={runs['w2v']}"])
    assert res.exit_code == 0, res.output
    assert _width(gated / "plots" / "gates.png") > 1.5 * narrow  # the second panel
    record = json.loads((gated / "single_stream.json").read_text())
    assert record == {
        "mfcc": {"run": str(runs["mfcc"]), "ua": {"en": 0.64, "de": 0.55}, "ua_std": {"en": 0.03, "de": 0.02}},
        "w2v": {"run": str(runs["w2v"]), "ua": {"en": 0.61, "de": 0.79}, "ua_std": {"en": 0.01, "de": 0.04}},
    }
    html = (gated / "report.html").read_text()
    assert "Gate weights and single-stream runs (the paper&#x27;s Fig. 4)" in html
    header = "<th>stream</th><th>single-stream run</th><th>en gate</th><th>en single-stream UA</th>"
    assert header + "<th>de gate</th><th>de single-stream UA</th>" in html
    # cells: this run's gate weights, the other runs' UA (mean ± std) as in their results.json
    assert f"<td>mfcc</td><td>{runs['mfcc']}</td><td>0.500</td><td>0.6400 ± 0.0300</td><td>0.100</td>" in html
    assert f"<td>w2v</td><td>{runs['w2v']}</td><td>0.300</td><td>0.6100 ± 0.0100</td><td>0.600</td>" in html
    assert "<td>ge2e</td><td>-</td><td>0.200</td><td>-</td><td>0.300</td><td>-</td>" in html

    # a later report without the option draws the same figure from single_stream.json
    (gated / "plots" / "gates.png").unlink()
    res = _invoke([str(gated), "--no-html"])
    assert res.exit_code == 0, res.output
    assert _width(gated / "plots" / "gates.png") > 1.5 * narrow


def test_the_ua_panel_shows_the_single_stream_values(runs: dict[str, Path], tmp_path: Path) -> None:
    """Bar heights in the second panel are the runs' UA (read back from the figure's axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from serkit.report import plots
    from serkit.report.plots import load_single_stream, plot_gates

    results = json.loads((runs["gated"] / "results.json").read_text())
    single = load_single_stream(runs["gated"], results, [("mfcc", runs["mfcc"]), ("w2v", runs["w2v"])])
    captured: list[Any] = []
    real_save = plots._save

    def keep(fig: Any, path: Path) -> Path:
        captured.append([[(round(b.get_height(), 6)) for b in ax.patches] for ax in fig.axes])
        return real_save(fig, path)

    plots._save = keep  # type: ignore[assignment]
    try:
        plot_gates(results, tmp_path, {s: v["ua"] for s, v in single.items()})
    finally:
        plots._save = real_save  # type: ignore[assignment]
    gate_bars, ua_bars = captured[0]
    # panel 1: streams (mfcc, ge2e, w2v) x domains (en, de), one bar series per domain
    assert gate_bars == [0.5, 0.2, 0.3, 0.1, 0.3, 0.6]
    # panel 2: the same streams x domains; ge2e has no single-stream run (no bar)
    np.testing.assert_array_equal(ua_bars, [0.64, np.nan, 0.61, 0.55, np.nan, 0.79])
    plt.close("all")
    assert np.isclose(single["w2v"]["ua"]["de"], 0.79)


def test_single_stream_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    gated = runs["gated"]
    res = _invoke([str(gated), "--single-stream", "mfcc"])
    assert res.exit_code == 2 and "expected STREAM=RUN_DIR, got 'mfcc'" in res.output
    res = _invoke([str(gated), str(runs["mfcc"]), "--single-stream", f"mfcc={runs['mfcc']}"])
    assert res.exit_code == 2 and "--single-stream applies to one run folder" in res.output

    res = _invoke([str(gated), "--single-stream", f"egemaps={runs['mfcc']}"])
    assert isinstance(res.exception, SerkitError)
    assert str(res.exception) == f"--single-stream egemaps: not a stream of {gated} (streams: mfcc, ge2e, w2v)"
    res = _invoke([str(gated), "--single-stream", f"mfcc={runs['both']}"])
    assert str(res.exception) == (
        f"--single-stream mfcc={runs['both']}: not a run of stream 'mfcc' alone (its streams: mfcc, w2v)"
    )
    res = _invoke([str(gated), "--single-stream", f"mfcc={tmp_path / 'nowhere'}"])
    assert str(res.exception) == f"{tmp_path / 'nowhere'}: no results.json (not a finished serkit run folder)"
    res = _invoke([str(runs["mfcc"]), "--single-stream", f"mfcc={runs['mfcc']}"])
    assert str(res.exception).startswith(f"{runs['mfcc']}: no gate weights in results.json")
    assert not (gated / "single_stream.json").exists()
