"""``serkit predict``: emotion predictions of audio files with a trained run.

The command is added to the main command line with ``cli.add_command(predict)``.
Importing this module is cheap: the model is loaded (torch imported) when it runs.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from serkit.inference import Prediction

__all__ = ["format_csv", "format_json", "predict"]


def _prob(p: float) -> float:
    return round(float(p), 6)


def format_json(predictions: list[Prediction], per_window: bool = False) -> str:
    """A JSON list of ``{file, domain, label, probabilities}`` (plus ``windows``)."""
    rows: list[dict[str, Any]] = []
    for p in predictions:
        row: dict[str, Any] = {
            "file": p.source,
            "domain": p.domain,
            "label": p.label,
            "probabilities": {k: _prob(v) for k, v in p.probabilities.items()},
        }
        if per_window and p.windows is not None:
            row["windows"] = [
                {
                    "start": w.start,
                    "end": w.end,
                    "label": w.label,
                    "probabilities": {k: _prob(v) for k, v in w.probabilities.items()},
                }
                for w in p.windows
            ]
        rows.append(row)
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def format_csv(predictions: list[Prediction], labels: list[str], per_window: bool = False) -> str:
    """CSV: ``file, domain, label, p_<label>...``; with ``per_window``, ``start, end``
    columns and one row per window after each file's row (whose start/end are empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    probs = [f"p_{lab}" for lab in labels]
    w.writerow(["file", "domain", *(["start", "end"] if per_window else []), "label", *probs])
    for p in predictions:
        span = ["", ""] if per_window else []
        w.writerow([p.source, p.domain, *span, p.label, *(_prob(p.probabilities[lab]) for lab in labels)])
        if per_window and p.windows is not None:
            for win in p.windows:
                w.writerow(
                    [
                        p.source,
                        p.domain,
                        win.start,
                        win.end,
                        win.label,
                        *(_prob(win.probabilities[lab]) for lab in labels),
                    ]
                )
    return buf.getvalue()


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="FILE_OR_DIR...")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder written by 'serkit run'.",
)
@click.option("--domain", default=None, help="Domain whose head to use (required with several domains).")
@click.option("--checkpoint", default=None, metavar="ID", help="Run id such as r0-f1 (default: best validation UA).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--window", type=float, default=None, metavar="S", help="Predict windows of S seconds and average.")
@click.option("--hop", type=float, default=None, metavar="S", help="Window hop in seconds (default: --window).")
@click.option("--per-window", is_flag=True, help="Also output every window's prediction (needs --window).")
@click.option("--batch-size", default=16, show_default=True, help="Files or windows per forward pass.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, ...")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable audio files (listed on stderr) instead of stopping.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
def predict(
    inputs: tuple[str, ...],
    run_dir: Path,
    domain: str | None,
    checkpoint: str | None,
    fmt: str,
    window: float | None,
    hop: float | None,
    per_window: bool,
    batch_size: int,
    device: str,
    skip_bad: bool,
    output: Path | None,
) -> None:
    """Predict the emotion of audio files (folders are searched for .wav/.flac/.ogg/.mp3).

    \b
    serkit predict --run runs/quickstart-20240101-120000 clip.wav
    serkit predict --run RUN --domain de --format csv --window 3 corpus/ -o out.csv
    """
    from serkit.inference import find_audio_files, load_model
    from serkit.io import atomic_write_text

    if per_window and window is None:
        raise click.UsageError("--per-window needs --window")
    if hop is not None and window is None:
        raise click.UsageError("--hop needs --window")
    files = find_audio_files(list(inputs))
    model = load_model(run_dir, checkpoint=checkpoint, device=device)
    bad: list[tuple[str, str]] | None = [] if skip_bad else None
    preds = model.predict(files, domain, window_seconds=window, hop_seconds=hop, batch_size=batch_size, bad=bad)
    for source, message in bad or []:
        click.secho(f"skipped {source}: {message}", fg="yellow", err=True)
    if fmt == "json":
        text = format_json(preds, per_window)
    else:
        text = format_csv(preds, model.labels(domain), per_window)
    if output is not None:
        atomic_write_text(output, text)
        click.echo(f"{len(preds)} prediction(s) -> {output}", err=True)
    else:
        click.echo(text, nl=False)
