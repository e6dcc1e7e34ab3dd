"""Plots, report.html and ``serkit report`` on a hand-built results.json mapping."""

from __future__ import annotations

import base64
import copy
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from serkit.errors import SerkitError
from serkit.report.html import markdown_to_html, render_html, write_html
from serkit.report.plots import (
    normalise_confusion,
    plot_confusions,
    plot_gates,
    plot_nas,
    plot_training_curves,
    write_plots,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _history(n_epochs: int, offset: float) -> list[dict[str, float]]:
    rows = []
    for e in range(1, n_epochs + 1):
        rows.append(
            {
                "epoch": e,
                "train_loss": 1.5 / e + offset,
                "val_ua/en": 0.3 + 0.05 * e + offset,
                "val_wa/en": 0.32 + 0.05 * e,
                "val_loss/en": 1.2 / e,
                "val_ua/de": 0.4 + 0.04 * e - offset,
                "val_wa/de": 0.41 + 0.04 * e,
                "val_loss/de": 1.1 / e,
            }
        )
    return rows


def _run(run_id: str, seed: int, n_epochs: int, offset: float) -> dict[str, Any]:
    return {
        "id": run_id,
        "repeat": seed,
        "fold": 0,
        "seed": seed,
        "best_epoch": n_epochs,
        "seconds": 1.0,
        "history": _history(n_epochs, offset),
        "test": {
            "en": {
                "ua": 0.61 + offset,
                "wa": 0.63,
                "macro_f1": 0.6,
                "n": 10,
                "confusion": [[3, 1, 0], [0, 3, 1], [0, 0, 0]],
            },
            "de": {
                "ua": 0.8 - offset,
                "wa": 0.82,
                "macro_f1": 0.79,
                "n": 12,
                "confusion": [[3, 0, 0, 0], [0, 2, 1, 0], [0, 0, 3, 0], [1, 0, 0, 2]],
                "gates": [0.5 + offset, 0.3, 0.2 - offset],
            },
        },
        "fusion": {"experts": ["mfcc", "egemaps", "w2v"]},
    }


@pytest.fixture
def results() -> dict[str, Any]:
    runs = [_run("r0-f0", 0, 5, 0.0), _run("r1-f0", 1, 4, 0.02)]  # second run stopped early
    return {
        "recipe": "toy-recipe",
        "source": "toy.yaml",
        "protocol": "speaker",
        "protocol_params": {"type": "speaker"},
        "repeats": 2,
        "folds": 1,
        "n_runs": 2,
        "seed": 0,
        "device": "cpu",
        "started": "2024-01-01T00:00:00",
        "wall_seconds": 12.5,
        "domains": {
            # "sad" is absent from the en test set: its row is all zeros
            "en": {
                "ua": {"mean": 0.6234, "std": 0.0141, "values": [0.61, 0.63]},
                "wa": {"mean": 0.63, "std": 0.0, "values": [0.63, 0.63]},
                "macro_f1": {"mean": 0.6, "std": 0.0, "values": [0.6, 0.6]},
                "n_test": 20,
                "labels": ["angry", "neutral", "sad"],
                "confusion": [[6, 2, 0], [0, 6, 2], [0, 0, 0]],
                "n_utterances": 100,
                "n_speakers": 5,
                "head": "en",
                "own_labels": ["angry", "neutral", "sad"],
            },
            "de": {
                "ua": {"mean": 0.7912, "std": 0.0141, "values": [0.8, 0.78]},
                "wa": {"mean": 0.82, "std": 0.0, "values": [0.82, 0.82]},
                "macro_f1": {"mean": 0.79, "std": 0.0, "values": [0.79, 0.79]},
                "n_test": 24,
                "labels": ["angry", "happy", "neutral", "sad"],
                "confusion": [[6, 0, 0, 0], [0, 4, 2, 0], [0, 0, 6, 0], [2, 0, 0, 4]],
                "n_utterances": 120,
                "n_speakers": 6,
                "head": "de",
                "own_labels": ["angry", "happy", "neutral", "sad"],
                "gates": {"streams": ["mfcc", "egemaps", "w2v"], "mean": [0.51, 0.3, 0.19], "std": [0.014, 0.0, 0.014]},
                "nas_connectivity": {
                    "streams": ["mfcc", "egemaps", "w2v"],
                    "rows": "output u_i",
                    "columns": "input stream f_j",
                    "mean": [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.0, 0.25, 0.75]],
                },
            },
        },
        "extraction": {"mfcc": {"computed": 10, "cached": 210, "failed": 0, "seconds": 3.2}},
        "n_bad_files": 0,
        "runs": runs,
    }


def _check_png(path: Path, min_h: int = 200, min_w: int = 200) -> np.ndarray:
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= min_h and img.shape[1] >= min_w
    assert img.shape[0] < 4000 and img.shape[1] < 4000
    assert float(img[..., :3].std()) > 0.01  # not blank
    return img


# ---------------------------------------------------------------- normalise_confusion


def test_normalise_confusion_matches_hand_computation() -> None:
    m = [[6, 2, 0], [1, 1, 2], [0, 0, 0]]
    got = normalise_confusion(m)
    expected = np.array([[0.75, 0.25, 0.0], [0.25, 0.25, 0.5], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(got, expected)
    assert not np.isnan(got).any()
    assert got.dtype == float


def test_normalise_confusion_all_zero_matrix_and_bad_shape() -> None:
    np.testing.assert_array_equal(normalise_confusion(np.zeros((2, 2), dtype=int)), np.zeros((2, 2)))
    with pytest.raises(SerkitError, match=r"confusion matrix must be square \(C, C\), got shape \(2, 3\)"):
        normalise_confusion([[1, 2, 3], [4, 5, 6]])


# ---------------------------------------------------------------- plots


def test_write_plots_writes_every_applicable_figure(tmp_path: Path, results: dict[str, Any]) -> None:
    paths = write_plots(tmp_path, results)
    plots = tmp_path / "plots"
    assert paths == [
        plots / "confusion_en.png",
        plots / "confusion_de.png",
        plots / "training_curves.png",
        plots / "gates.png",
        plots / "nas_de.png",
    ]
    for p in paths:
        _check_png(p)
    assert not (plots / "nas_en.png").exists()
    assert sorted(x.name for x in plots.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_training_curves_is_wider_with_more_panels(tmp_path: Path, results: dict[str, Any]) -> None:
    # 3 panels (train loss + 2 domains) side by side: wider than tall
    (path,) = plot_training_curves(results, tmp_path)
    img = _check_png(path)
    assert img.shape[1] > img.shape[0]
    no_history = copy.deepcopy(results)
    for r in no_history["runs"]:
        r["history"] = []
    assert plot_training_curves(no_history, tmp_path / "none") == []
    assert not (tmp_path / "none").exists()


def test_no_gates_no_nas_means_no_such_plots(tmp_path: Path, results: dict[str, Any]) -> None:
    plain = copy.deepcopy(results)
    for m in plain["domains"].values():
        m.pop("gates", None)
        m.pop("nas_connectivity", None)
    assert plot_gates(plain, tmp_path) == []
    assert plot_nas(plain, tmp_path) == []
    names = sorted(p.name for p in write_plots(tmp_path, plain))
    assert names == ["confusion_de.png", "confusion_en.png", "training_curves.png"]
    assert not (tmp_path / "plots" / "gates.png").exists()


def test_gates_with_single_stream_ua_adds_a_panel(tmp_path: Path, results: dict[str, Any]) -> None:
    (one,) = plot_gates(results, tmp_path / "a")
    single = {"mfcc": {"de": 0.7, "en": 0.5}, "egemaps": {"de": 0.65}, "w2v": {"de": 0.85}}
    (two,) = plot_gates(results, tmp_path / "b", single_stream_ua=single)
    w1 = _check_png(one).shape[1]
    w2 = _check_png(two).shape[1]
    assert w2 > 1.5 * w1


def test_confusion_plot_with_absent_label_and_no_stream_names(tmp_path: Path, results: dict[str, Any]) -> None:
    # en has an all-zero row ("sad" absent from its test set): drawn without NaN warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        paths = plot_confusions(results, tmp_path)
    assert [p.name for p in paths] == ["confusion_en.png", "confusion_de.png"]
    unnamed = copy.deepcopy(results)
    unnamed["domains"]["de"]["gates"]["streams"] = None
    unnamed["domains"]["de"]["nas_connectivity"]["streams"] = None
    assert [p.name for p in plot_nas(unnamed, tmp_path)] == ["nas_de.png"]
    assert [p.name for p in plot_gates(unnamed, tmp_path)] == ["gates.png"]


def test_nas_rejects_a_non_matrix(tmp_path: Path, results: dict[str, Any]) -> None:
    bad = copy.deepcopy(results)
    bad["domains"]["de"]["nas_connectivity"]["mean"] = [0.1, 0.2, 0.7]
    with pytest.raises(SerkitError, match=r"domains\.de\.nas_connectivity\.mean must be an \(M, M\) matrix"):
        plot_nas(bad, tmp_path)


# ---------------------------------------------------------------- html


def test_markdown_to_html_tables_lists_and_escaping() -> None:
    md = "# T <x>\n\n- a **b** & c\n- d\n\n| h1 | h2 |\n| --- | --- |\n| 1 | <2> |\n\nsome\ntext\n"
    out = markdown_to_html(md)
    assert "<h1>T &lt;x&gt;</h1>" in out
    assert "<ul>\n<li>a <strong>b</strong> &amp; c</li>\n<li>d</li>\n</ul>" in out
    assert "<thead><tr><th>h1</th><th>h2</th></tr></thead>" in out
    assert "<tr><td>1</td><td>&lt;2&gt;</td></tr>" in out
    assert "<p>some text</p>" in out


def test_report_html_embeds_every_plot_and_the_tables(tmp_path: Path, results: dict[str, Any]) -> None:
    plots = write_plots(tmp_path, results)
    path = write_html(tmp_path, results)  # None -> every plots/*.png
    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "report.html"
    assert "0.6234 ± 0.0141" in text and "0.7912 ± 0.0141" in text
    assert text.count('<img src="data:image/png;base64,') == len(plots) == 5
    assert "<th>true \\ pred</th>" in text
    # the embedded data decode back to the PNG files
    first = text.split('<img src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(first) in {p.read_bytes() for p in plots}
    assert render_html(results).count("<img") == 0


# ---------------------------------------------------------------- CLI


def test_report_command_regenerates_everything(tmp_path: Path, results: dict[str, Any]) -> None:
    from serkit.cli.report_cmd import report

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    res = CliRunner().invoke(report, [str(run)])
    assert res.exit_code == 0, res.output
    assert "5 plot(s)" in res.output
    for name in ["report.md", "report.html", "plots/confusion_en.png", "plots/nas_de.png", "plots/gates.png"]:
        assert (run / name).is_file(), name
    assert "| en | 0.6234 ± 0.0141 |" in (run / "report.md").read_text(encoding="utf-8")
    html_text = (run / "report.html").read_text(encoding="utf-8")
    assert html_text.count("data:image/png;base64,") == 5

    # regenerated: a deleted plot comes back; --no-html leaves no report.html
    (run / "plots" / "gates.png").unlink()
    (run / "report.html").unlink()
    res = CliRunner().invoke(report, [str(run), "--no-html"])
    assert res.exit_code == 0, res.output
    assert (run / "plots" / "gates.png").is_file()
    assert not (run / "report.html").exists()


def test_report_command_names_a_folder_without_results(tmp_path: Path) -> None:
    from serkit.cli.report_cmd import report

    res = CliRunner().invoke(report, [str(tmp_path)])
    assert isinstance(res.exception, SerkitError)
    assert str(res.exception) == f"{tmp_path}: no results.json (not a finished serkit run folder)"


def test_png_bytes_are_in_memory_rendered(tmp_path: Path, results: dict[str, Any]) -> None:
    # the written file is a complete PNG (IEND chunk at the end), as rendered into memory
    (path,) = plot_nas(results, tmp_path)
    data = io.BytesIO(path.read_bytes()).getvalue()
    assert data.endswith(b"IEND\xaeB`\x82")
