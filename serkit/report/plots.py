"""PNG figures of a run folder, drawn from its ``results.json`` mapping.

Every ``plot_*`` function takes the results mapping and an output folder, writes its
figure(s) atomically (rendered into memory, then :func:`serkit.io.atomic_write_bytes`) and
returns the list of written paths (empty when the results hold nothing to draw).
matplotlib is imported inside the functions, with the non-interactive ``Agg`` backend.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serkit.errors import SerkitError
from serkit.io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "SINGLE_STREAM_FILE",
    "load_single_stream",
    "normalise_confusion",
    "plot_confusions",
    "plot_gates",
    "plot_layer_weights",
    "plot_nas",
    "plot_training_curves",
    "write_plots",
]

DPI = 120

#: File in a run folder recording the single-stream runs drawn beside its gate weights.
SINGLE_STREAM_FILE = "single_stream.json"


def normalise_confusion(m: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (rows = true classes sum to 1).

    Args:
        m: (C, C) counts, rows = true class, columns = predicted class.

    Returns:
        (C, C) float array; a row with no samples (all zeros) stays all zeros, never NaN.
    """
    a = np.asarray(m, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise SerkitError(f"confusion matrix must be square (C, C), got shape {a.shape}")
    totals = a.sum(axis=1, keepdims=True)
    out = np.zeros_like(a)
    np.divide(a, totals, out=out, where=totals > 0)
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _run_title(results: dict[str, Any]) -> str:
    n = results.get("n_runs", len(results.get("runs", [])))
    return f"{results.get('recipe', 'run')} — protocol {results.get('protocol', '?')}, {n} run(s)"


def _stream_names(streams: Sequence[str] | None, n: int) -> list[str]:
    if streams and len(streams) == n:
        return [str(s) for s in streams]
    return [f"stream {i + 1}" for i in range(n)]


def _text_colour(value: float) -> str:
    return "white" if value > 0.6 else "black"


def plot_confusions(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """One row-normalised confusion matrix per domain -> ``confusion_<domain>.png``.

    Cells are annotated with the proportion of the true class; rows of labels absent from
    the domain's test set are drawn blank (grey) and annotated "no test utterances".
    """
    plt = _pyplot()
    written: list[Path] = []
    for d, m in results.get("domains", {}).items():
        labels = [str(x) for x in m["labels"]]
        counts = np.asarray(m["confusion"], dtype=float)
        norm = normalise_confusion(counts)
        empty = counts.sum(axis=1) == 0
        shown = np.ma.masked_array(norm, mask=np.repeat(empty[:, None], len(labels), axis=1))
        c = len(labels)
        size = max(4.0, 0.8 * c + 2.5)
        fig, ax = plt.subplots(figsize=(size + 1.0, size))
        cmap = plt.get_cmap("Blues").with_extremes(bad="#e6e6e6")
        im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="proportion of true class")
        for i in range(c):
            if empty[i]:
                ax.text(c / 2 - 0.5, i, "no test utterances", ha="center", va="center", fontsize=8, color="#555555")
                continue
            for j in range(c):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=9, color=_text_colour(norm[i, j]))
        ax.set_xticks(range(c), labels, rotation=45, ha="right")
        ax.set_yticks(range(c), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ua = m.get("ua", {}).get("mean")
        ua_text = f", UA {ua:.3f}" if isinstance(ua, (int, float)) else ""
        ax.set_title(f"{_run_title(results)}\nconfusion, domain {d}{ua_text} (summed over runs)", fontsize=10)
        written.append(_save(fig, Path(out_dir) / f"confusion_{d}.png"))
    return written


def _mean_curve(curves: list[list[float]]) -> np.ndarray:
    """Mean per epoch over runs of possibly different lengths (early stopping), NaN-safe."""
    length = max(len(c) for c in curves)
    grid = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
    counts = np.sum(~np.isnan(grid), axis=0)
    sums = np.nansum(grid, axis=0)
    out = np.full(length, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def plot_training_curves(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Train loss and validation UA per domain vs epoch -> ``training_curves.png``.

    One light line per run and the mean over runs in bold (runs stopped early contribute to
    the mean of the epochs they reached). Nothing is written when no run has a history.
    """
    runs = [r for r in results.get("runs", []) if r.get("history")]
    if not runs:
        return []
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    domains = list(results.get("domains", {}))
    if not domains:
        keys = {k for r in runs for row in r["history"] for k in row}
        domains = sorted(k.split("/", 1)[1] for k in keys if k.startswith("val_ua/"))
    panels = ["train_loss", *(f"val_ua/{d}" for d in domains)]
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for k, key in enumerate(panels):
        ax = axes[k // cols][k % cols]
        curves: list[list[float]] = []
        for r in runs:
            epochs = [float(row["epoch"]) for row in r["history"]]
            ys = [float(row.get(key, math.nan)) for row in r["history"]]
            ax.plot(epochs, ys, color="tab:blue", alpha=0.3, linewidth=1.0)
            curves.append(ys)
        mean = _mean_curve(curves)
        ax.plot(np.arange(1, len(mean) + 1), mean, color="tab:blue", linewidth=2.5, label="mean over runs")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key == "train_loss":
            ax.set_ylabel("train loss")
            ax.set_title("train loss")
        else:
            ax.set_ylabel("validation UA")
            ax.set_title(f"validation UA, domain {key.split('/', 1)[1]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"{_run_title(results)}\ntraining curves (light: each run, bold: mean)", fontsize=11)
    fig.tight_layout()
    return [_save(fig, Path(out_dir) / "training_curves.png")]


def _grouped_bars(
    ax: Any,
    streams: list[str],
    domains: list[str],
    values: dict[str, dict[str, float]],
    errors: dict[str, dict[str, float]] | None = None,
) -> None:
    """Bars grouped by stream (x), one bar per domain; ``values[domain][stream]`` (NaN = absent)."""
    width = 0.8 / max(len(domains), 1)
    x = np.arange(len(streams))
    for k, d in enumerate(domains):
        ys = [values[d].get(s, math.nan) for s in streams]
        err = None
        if errors is not None:
            err = [errors[d].get(s, 0.0) for s in streams]
        ax.bar(x + (k - (len(domains) - 1) / 2) * width, ys, width, yerr=err, capsize=3, label=d)
    ax.set_xticks(x, streams, rotation=30, ha="right")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="domain", fontsize=8)


def plot_gates(
    results: dict[str, Any],
    out_dir: Path,
    single_stream_ua: dict[str, dict[str, float]] | None = None,
) -> list[Path]:
    """Mean test-set gate weight per stream and domain (std over runs as error bars) -> ``gates.png``.

    Args:
        results: results.json mapping; only domains with a ``gates`` entry are drawn.
        out_dir: folder of the figure.
        single_stream_ua: optional ``{stream: {domain: UA}}`` of single-stream runs, drawn
            as a second panel beside the gates (the paper's Fig. 4), streams in the same
            order (a stream without a single-stream run is marked "no run").

    Returns:
        ``[out_dir / "gates.png"]``, or ``[]`` when no domain has gates.
    """
    gated = {d: m["gates"] for d, m in results.get("domains", {}).items() if m.get("gates")}
    if not gated:
        return []
    plt = _pyplot()
    streams: list[str] = []
    means: dict[str, dict[str, float]] = {}
    stds: dict[str, dict[str, float]] = {}
    for d, g in gated.items():
        names = _stream_names(g.get("streams"), len(g["mean"]))
        for s in names:
            if s not in streams:
                streams.append(s)
        means[d] = {s: float(v) for s, v in zip(names, g["mean"], strict=True)}
        std = g.get("std") or [0.0] * len(names)
        stds[d] = {s: float(v) for s, v in zip(names, std, strict=True)}
    domains = list(gated)
    panels = 2 if single_stream_ua else 1
    width = max(5.0, 0.6 * len(streams) * max(len(domains), 1) + 2.0)
    fig, axes = plt.subplots(1, panels, figsize=(width * panels, 4.2), squeeze=False)
    ax = axes[0][0]
    _grouped_bars(ax, streams, domains, means, stds)
    ax.set_ylabel("mean gate weight (test set)")
    ax.set_xlabel("stream")
    ax.set_title("gate weight per stream (± std over runs)")
    if single_stream_ua:
        ax2 = axes[0][1]
        # the same streams in the same order as the gates (a stream without a run: no bar)
        ua_streams = streams + [s for s in single_stream_ua if s not in streams]
        ua_domains = list(domains)
        for per_domain in single_stream_ua.values():
            for d in per_domain:
                if d not in ua_domains:
                    ua_domains.append(d)
        values = {d: {s: float(single_stream_ua.get(s, {}).get(d, math.nan)) for s in ua_streams} for d in ua_domains}
        _grouped_bars(ax2, ua_streams, ua_domains, values)
        for k, s in enumerate(ua_streams):
            if s not in single_stream_ua:
                ax2.text(k, 0.02, "no run", ha="center", va="bottom", fontsize=8, color="#555555")
        ax2.set_ylabel("test UA (mean over runs)")
        ax2.set_xlabel("stream the run was trained on")
        ax2.set_ylim(0.0, 1.0)
        ax2.set_title("single-stream runs: UA per domain")
    fig.suptitle(f"{_run_title(results)}\nfusion gates", fontsize=11)
    fig.tight_layout()
    return [_save(fig, Path(out_dir) / "gates.png")]


def _stream_ids(run_dir: Path, results: dict[str, Any]) -> list[str] | None:
    """The streams of a run: its ``recipe.yaml`` features, else the gate streams; None if unknown."""
    import yaml

    recipe = Path(run_dir) / "recipe.yaml"
    if recipe.is_file():
        data = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
        if isinstance(data.get("features"), dict):
            return [str(s) for s in data["features"]]
    for m in results.get("domains", {}).values():
        if (m.get("gates") or {}).get("streams"):
            return [str(s) for s in m["gates"]["streams"]]
    return None


def load_single_stream(
    run_dir: Path, results: dict[str, Any], specs: Sequence[tuple[str, str | Path]]
) -> dict[str, dict[str, Any]]:
    """Per-domain test UA of single-stream runs, to draw beside a gated run's gate weights (Fig. 4).

    Args:
        run_dir: the gated run's folder.
        results: its results.json mapping; needs gate weights (a gated fusion).
        specs: ``(stream id, run folder)`` pairs; each run must be trained on that stream
            alone (checked against its ``recipe.yaml`` when present).

    Returns:
        ``{stream: {"run": folder, "ua": {domain: mean}, "ua_std": {domain: std}}}``, in the
        order given; what :data:`SINGLE_STREAM_FILE` holds.

    Raises:
        SerkitError: the run has no gate weights, a stream is not one of its streams, a
            folder has no results.json, or is not a run of that stream alone.
    """
    from serkit.report.compare import load_results

    if not any(m.get("gates") for m in results.get("domains", {}).values()):
        raise SerkitError(
            f"{run_dir}: no gate weights in results.json (the fusion is not gated: omoe, mmoe or gated_nas); "
            "single-stream accuracies are drawn beside gate weights"
        )
    own = _stream_ids(run_dir, results)
    out: dict[str, dict[str, Any]] = {}
    for stream, other in specs:
        if own is not None and stream not in own:
            raise SerkitError(f"--single-stream {stream}: not a stream of {run_dir} (streams: {', '.join(own)})")
        res = load_results(other)
        theirs = _stream_ids(Path(other), res)
        if theirs is not None and theirs != [stream]:
            raise SerkitError(
                f"--single-stream {stream}={other}: not a run of stream {stream!r} alone (its streams: "
                f"{', '.join(theirs)})"
            )
        doms = res.get("domains", {})
        out[stream] = {
            "run": str(other),
            "ua": {d: float(m["ua"]["mean"]) for d, m in doms.items()},
            "ua_std": {d: float(m["ua"]["std"]) for d, m in doms.items()},
        }
    return out


def plot_nas(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """One heat map of the mean NAS connectivity per domain -> ``nas_<domain>.png``.

    The (M, M) matrix has rows = output u_i and columns = input stream f_j, colour scale
    fixed to [0, 1], values annotated. Domains without ``nas_connectivity`` are skipped.
    """
    written: list[Path] = []
    for d, m in results.get("domains", {}).items():
        nas = m.get("nas_connectivity")
        if not nas:
            continue
        plt = _pyplot()
        xi = np.asarray(nas["mean"], dtype=float)
        if xi.ndim != 2:
            raise SerkitError(
                f"results.json: domains.{d}.nas_connectivity.mean must be an (M, M) matrix, got shape {xi.shape}"
            )
        rows, cols = xi.shape
        names = _stream_names(nas.get("streams"), cols)
        size = max(4.0, 0.8 * cols + 2.5)
        fig, ax = plt.subplots(figsize=(size + 1.0, size))
        im = ax.imshow(xi, cmap="viridis", vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="connection weight")
        for i in range(rows):
            for j in range(cols):
                ax.text(
                    j,
                    i,
                    f"{xi[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="black" if xi[i, j] > 0.6 else "white",
                )
        ax.set_xticks(range(cols), names, rotation=45, ha="right")
        ax.set_yticks(range(rows), [f"u{i + 1}" for i in range(rows)])
        ax.set_xlabel(str(nas.get("columns", "input stream f_j")))
        ax.set_ylabel(str(nas.get("rows", "output u_i")))
        ax.set_title(f"{_run_title(results)}\nNAS connectivity, domain {d} (mean over runs)", fontsize=10)
        written.append(_save(fig, Path(out_dir) / f"nas_{d}.png"))
    return written


def _load_embeddings(run_dir: Path) -> tuple[str, dict[str, np.ndarray]] | None:
    files = sorted((Path(run_dir) / "embeddings").glob("*.npz"))
    if not files:
        return None
    with np.load(files[0], allow_pickle=False) as data:
        return files[0].stem, {k: data[k] for k in data.files}


def _tsne_panel(ax: Any, arrays: dict[str, np.ndarray], domain: str, title: str, max_points: int) -> None:
    """Scatter one domain's fused test representations after t-SNE, coloured by emotion."""
    from sklearn.manifold import TSNE

    x, y = arrays[f"{domain}.x"], arrays[f"{domain}.y"]
    names = [str(n) for n in arrays[f"{domain}.labels"]]
    if len(x) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(x), max_points, replace=False))
        x, y = x[keep], y[keep]
    if len(x) < 5:
        ax.set_axis_off()
        return
    z = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=0).fit_transform(x)
    for c in sorted(set(y.tolist())):
        m = y == c
        ax.scatter(z[m, 0], z[m, 1], s=10, alpha=0.8, label=names[c])
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(fontsize=8, markerscale=1.5, loc="best")


def plot_tsne(results: dict[str, Any], run_dir: Path, max_points: int = 1500) -> list[Path]:
    """t-SNE of the fused test representations of the first run, one panel per domain.

    Reads ``run_dir/embeddings/*.npz`` (written by ``serkit run``); points are coloured
    by true emotion (the paper's Fig. 3). Writes ``plots/tsne.png``; nothing without
    embeddings.
    """
    loaded = _load_embeddings(run_dir)
    if loaded is None:
        return []
    run_id, arrays = loaded
    domains = sorted({k.rsplit(".", 1)[0] for k in arrays if k.endswith(".x")})
    if not domains:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(domains), figsize=(5.2 * len(domains), 4.8), squeeze=False)
    for ax, d in zip(axes[0], domains, strict=True):
        _tsne_panel(ax, arrays, d, f"domain {d} ({run_id}, test set)", max_points)
    fig.suptitle(f"{_run_title(results)}\nfused representation, coloured by emotion")
    fig.tight_layout()
    return [_save(fig, Path(run_dir) / "plots" / "tsne.png")]


def plot_tsne_runs(run_dirs: Sequence[Path], domain: str, out: Path, max_points: int = 1500) -> Path:
    """Side-by-side t-SNE of one domain in several runs (e.g. alpha = 0 vs alpha > 0, Fig. 3).

    Raises:
        SerkitError: a run has no saved embeddings or not this domain.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(run_dirs), figsize=(5.2 * len(run_dirs), 4.8), squeeze=False)
    for ax, run_dir in zip(axes[0], run_dirs, strict=True):
        loaded = _load_embeddings(run_dir)
        if loaded is None or f"{domain}.x" not in loaded[1]:
            raise SerkitError(f"{run_dir}: no saved test embeddings of domain {domain!r} (embeddings/*.npz)")
        _tsne_panel(ax, loaded[1], domain, f"{Path(run_dir).name}: domain {domain}", max_points)
    fig.suptitle("fused representation, coloured by emotion")
    fig.tight_layout()
    return _save(fig, out)


def plot_layer_weights(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """One panel per domain: the mean learned weight of each layer (± std over runs) -> ``layer_weights.png``.

    Several weighted_layers streams are drawn side by side in each panel. Returns ``[]``
    when no domain has layer weights.
    """
    domains = {d: m["layer_weights"] for d, m in results.get("domains", {}).items() if m.get("layer_weights")}
    if not domains:
        return []
    plt = _pyplot()
    cols = min(len(domains), 3)
    rows = -(-len(domains) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False, sharey=True)
    for k, (d, per_stream) in enumerate(domains.items()):
        ax = axes[k // cols][k % cols]
        streams = list(per_stream)
        width = 0.8 / len(streams)
        for s_i, stream in enumerate(streams):
            mean = np.asarray(per_stream[stream]["mean"], dtype=float)
            std = np.asarray(per_stream[stream].get("std") or np.zeros_like(mean), dtype=float)
            x = np.arange(len(mean)) + (s_i - (len(streams) - 1) / 2) * width
            ax.bar(x, mean, width, yerr=std, capsize=2, label=stream)
        n = max(len(per_stream[s]["mean"]) for s in streams)
        ax.axhline(1.0 / n, color="#888888", linestyle="--", linewidth=0.8)  # the uniform start
        ax.set_title(f"domain {d}", fontsize=10)
        ax.set_xlabel("layer (0 = transformer input)")
        ax.set_xticks(range(n), [str(j) for j in range(n)], fontsize=7)
        ax.grid(axis="y", alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("softmax weight")
        if len(streams) > 1:
            ax.legend(title="stream", fontsize=7)
    for k in range(len(domains), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"{_run_title(results)}\nlearned layer weights (dashed: uniform start)", fontsize=11)
    fig.tight_layout()
    return [_save(fig, Path(out_dir) / "layer_weights.png")]


def write_plots(
    run_dir: Path,
    results: dict[str, Any],
    single_stream_ua: dict[str, dict[str, float]] | None = None,
) -> list[Path]:
    """Every figure that applies to ``results``, written under ``run_dir / "plots"``.

    Returns the written paths: confusions, training curves, gates, NAS heat maps, layer weights (in order).
    """
    out = Path(run_dir) / "plots"
    paths: list[Path] = []
    paths += plot_confusions(results, out)
    paths += plot_training_curves(results, out)
    paths += plot_gates(results, out, single_stream_ua)
    paths += plot_nas(results, out)
    paths += plot_layer_weights(results, out)
    paths += plot_tsne(results, Path(run_dir))
    return paths
