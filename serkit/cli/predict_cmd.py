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

from serkit.errors import SerkitError

if TYPE_CHECKING:
    from serkit.inference import Prediction

__all__ = ["format_csv", "format_json", "predict", "speakers_of"]


def _prob(p: float) -> float:
    return round(float(p), 6)


def format_json(predictions: list[Prediction], per_window: bool = False) -> str:
    """A JSON list of ``{file, domain, label, probabilities}`` (plus ``speaker``, ``windows``)."""
    rows: list[dict[str, Any]] = []
    for p in predictions:
        row: dict[str, Any] = {
            "file": p.source,
            "domain": p.domain,
            **({"speaker": p.speaker} if p.speaker is not None else {}),
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
    columns and one row per window after each file's row (whose start/end are empty).
    A ``speaker`` column follows ``domain`` when the predictions carry speakers."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    probs = [f"p_{lab}" for lab in labels]
    with_speaker = any(p.speaker is not None for p in predictions)
    spk_col = ["speaker"] if with_speaker else []
    w.writerow(["file", "domain", *spk_col, *(["start", "end"] if per_window else []), "label", *probs])
    for p in predictions:
        span = ["", ""] if per_window else []
        spk = [p.speaker or ""] if with_speaker else []
        w.writerow([p.source, p.domain, *spk, *span, p.label, *(_prob(p.probabilities[lab]) for lab in labels)])
        if per_window and p.windows is not None:
            for win in p.windows:
                w.writerow(
                    [
                        p.source,
                        p.domain,
                        *spk,
                        win.start,
                        win.end,
                        win.label,
                        *(_prob(win.probabilities[lab]) for lab in labels),
                    ]
                )
    return buf.getvalue()


def speakers_of(
    files: list[str], speaker: str | None = None, from_dir: bool = False, mapping: Path | None = None
) -> list[str] | None:
    """The speaker of each file: one id for all, each file's folder name, or a CSV mapping.

    The CSV has a header with ``file`` and ``speaker`` columns; ``file`` is matched against
    each input's resolved path (relative entries are relative to the CSV's folder), then
    against its file name when that name is unique in the CSV.

    Raises:
        click.UsageError: more than one way was given.
        SerkitError: the CSV lacks a column, or does not name some of the files.
    """
    ways = {"--speaker": speaker is not None, "--speaker-from-dir": from_dir, "--speakers": mapping is not None}
    given = [name for name, on in ways.items() if on]
    if len(given) > 1:
        raise click.UsageError(f"give only one of {', '.join(given)}")
    if speaker is not None:
        return [speaker] * len(files)
    if from_dir:
        return [Path(f).resolve().parent.name for f in files]
    if mapping is None:
        return None
    try:
        with open(mapping, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except OSError as err:
        raise SerkitError(f"--speakers {mapping}: cannot read ({err.strerror or err})") from None
    if "file" not in columns or "speaker" not in columns:
        raise SerkitError(f"--speakers {mapping}: needs the columns file and speaker; found {', '.join(columns)}")
    by_path: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    for row in rows:
        entry = Path(row["file"])
        full = entry if entry.is_absolute() else Path(mapping).parent / entry
        by_path[str(full.resolve())] = row["speaker"]
        by_name.setdefault(entry.name, []).append(row["speaker"])
    out: list[str] = []
    missing: list[str] = []
    for f in files:
        spk = by_path.get(str(Path(f).resolve()))
        if spk is None and len(by_name.get(Path(f).name, [])) == 1:
            spk = by_name[Path(f).name][0]
        if spk is None:
            missing.append(f)
        out.append(spk or "")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise SerkitError(f"--speakers {mapping}: no speaker for {len(missing)} file(s): {shown}")
    return out


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
@click.option("--speaker", default=None, metavar="ID", help="Speaker of every file (speaker-normalised models).")
@click.option("--speaker-from-dir", is_flag=True, help="Each file's speaker is the name of its folder.")
@click.option(
    "--speakers",
    "speaker_csv",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CSV with file,speaker columns.",
)
@click.option(
    "--speaker-stats",
    type=click.Choice(["auto", "call", "global"]),
    default="auto",
    show_default=True,
    help="Speaker-normalised models: statistics of known (training) speakers, else from the given files "
    "(auto); always from the given files (call); the domain's overall statistics, no speakers needed (global).",
)
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
    speaker: str | None,
    speaker_from_dir: bool,
    speaker_csv: Path | None,
    speaker_stats: str,
    output: Path | None,
) -> None:
    """Predict the emotion of audio files (folders are searched for .wav/.flac/.ogg/.mp3).

    \b
    serkit predict --run runs/quickstart-20240101-120000 clip.wav
    serkit predict --run RUN --domain de --format csv --window 3 corpus/ -o out.csv
    serkit predict --run RUN --speaker-from-dir speakers/      # speaker_norm runs: one folder per speaker

    Runs trained with data.speaker_norm standardise features per speaker: give the speakers
    (--speaker, --speaker-from-dir or --speakers). A speaker that was not in the run's
    training data is standardised with statistics of its files in this call, so give
    several files per speaker (fewer than 5 gives a warning).
    """
    from serkit.inference import find_audio_files, load_model
    from serkit.io import atomic_write_text

    if per_window and window is None:
        raise click.UsageError("--per-window needs --window")
    if hop is not None and window is None:
        raise click.UsageError("--hop needs --window")
    files = find_audio_files(list(inputs))
    speakers = speakers_of(files, speaker, speaker_from_dir, speaker_csv)
    model = load_model(run_dir, checkpoint=checkpoint, device=device)
    domains = ", ".join(model.domains)
    if domain is None and len(model.domains) > 1:  # the API's message says domain=; name the option here
        raise SerkitError(f"{run_dir}: the model has several domains; pass --domain, one of: {domains}")
    if domain is not None and domain not in model.domains:
        raise SerkitError(f"--domain {domain}: not a domain of {run_dir}; its domains: {domains}")
    bad: list[tuple[str, str]] | None = [] if skip_bad else None
    preds = model.predict(
        files,
        domain,
        window_seconds=window,
        hop_seconds=hop,
        batch_size=batch_size,
        bad=bad,
        speakers=speakers,
        speaker_stats=speaker_stats,  # type: ignore[arg-type]
    )
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
