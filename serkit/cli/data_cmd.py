"""``serkit data ...``: inspect a corpus (``info``), audit its splits (``audit``), fetch public ones (``download``).

The group is added to the main command line with ``cli.add_command(data)``. Importing
this module is cheap: the logic (:mod:`serkit.data.info`, :mod:`serkit.data.download`)
and rich are imported when a command runs. Errors are :class:`~serkit.errors.SerkitError`
subclasses, which ``serkit``'s entry point prints as ``error: ...`` with exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from serkit.data.info import CorpusInfo

__all__ = ["PROGRESS_MIN_FILES", "data"]

#: Corpora with at least this many files get a progress bar (on a terminal).
PROGRESS_MIN_FILES = 200
#: Problems of each kind listed in the table output (``--json`` lists them all).
MAX_SHOWN = 20


@click.group()
def data() -> None:
    """Inspect corpora on disk, audit their splits and download the public ones."""


# ------------------------------------------------------------------ info
@data.command("info")
@click.argument("name")
@click.option("--root", default=None, metavar="PATH", help="The corpus folder (the dataset's root parameter).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Another dataset parameter, value parsed as YAML (e.g. --set path=m.csv, --set sessions=[1,2]); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--decode", is_flag=True, help="Also decode every file to find empty, silent, NaN and too-short audio (slower)."
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Threads reading the files.")
def info(
    name: str, root: str | None, overrides: tuple[str, ...], as_json: bool, decode: bool, workers: int | None
) -> None:
    """Summarise the corpus of dataset NAME: utterances, speakers, emotions, audio, problems.

    \b
    serkit data info emodb --root ~/corpora/emodb
    serkit data info manifest --set path=corpus.csv --decode
    serkit data info iemocap --root IEMOCAP_full_release --set sessions=[1] --json

    Datasets with a 'strict' parameter are read with strict: false (unless --set
    strict=...), so misnamed files are listed as problems instead of stopping the listing.
    Exit code 0 when the corpus could be listed, even with problems; 2 when it could not.
    """
    from rich.console import Console

    from serkit.data.info import corpus_info, open_dataset

    dataset, relaxed = open_dataset(name, root, overrides)
    err_console = Console(stderr=True)
    with _Progress(err_console, enabled=not as_json) as progress:
        summary = corpus_info(dataset, decode=decode, strict_relaxed=relaxed, workers=workers, progress=progress)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        return
    _print_info(Console(), summary, getattr(dataset.params, "root", None))


class _Progress:
    """A rich progress bar per stage, shown only on a terminal and for large corpora."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total < PROGRESS_MIN_FILES:
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
        if stage not in self.tasks:
            label = "reading headers" if stage == "headers" else "decoding audio"
            self.tasks[stage] = self.bar.add_task(label, total=total)
        self.bar.update(self.tasks[stage], completed=done)


def _seconds(x: float) -> str:
    hours, rest = divmod(x, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
    return f"{x:.3f} s ({clock})"


def _print_info(console: Console, s: CorpusInfo, root: str | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from serkit.data.info import relative_to_root

    title = f"{s.dataset}" + (f" ({root})" if root else "")
    table = Table(title=escape(title), show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    sp = s.speakers
    table.add_row("utterances", str(s.utterances))
    table.add_row(
        "speakers",
        f"{sp.count} (utterances per speaker: min {sp.min}, median {sp.median:g}, mean {sp.mean:.1f}, max {sp.max})",
    )
    table.add_row("languages", ", ".join(f"{k}: {v}" for k, v in s.languages.items()))
    table.add_row("readable files", f"{s.readable} of {s.utterances}")
    if s.duration is not None:
        d = s.duration
        table.add_row("total duration", _seconds(d.total))
        table.add_row("duration mean / min / max", f"{d.mean:.3f} / {d.min:.3f} / {d.max:.3f} s")
    table.add_row("sample rates", ", ".join(f"{k} Hz: {v}" for k, v in s.sample_rates.items()) or "-")
    table.add_row("channels", ", ".join(f"{k}: {v}" for k, v in s.channels.items()) or "-")
    table.add_row("excluded by the parameters", str(s.excluded))
    table.add_row("decoded", "yes" if s.decoded else "no (--decode checks every sample)")
    console.print(table)

    emotions = Table(title="emotions", title_justify="left")
    emotions.add_column("label")
    emotions.add_column("utterances", justify="right")
    emotions.add_column("share", justify="right")
    for label, n in s.emotions.items():
        emotions.add_row(escape(label), str(n), f"{100 * n / max(1, s.utterances):.1f}%")
    console.print(emotions)

    if 1 < sp.count <= 30:
        speakers = Table(title="speakers", title_justify="left")
        speakers.add_column("speaker")
        speakers.add_column("utterances", justify="right")
        for spk, n in sp.per_speaker.items():
            speakers.add_row(escape(spk), str(n))
        console.print(speakers)

    groups = [
        ("unreadable files", s.unreadable),
        ("files too short to use", s.too_short),
        ("decoding problems", s.decode_problems),
        ("files that do not follow the naming scheme", s.naming_problems),
        (
            "labels outside serkit's canonical emotions (map them with label_map)",
            [f"{k}: {v} utterance(s)" for k, v in s.unknown_labels.items()],
        ),
    ]
    if s.problem_count == 0:
        console.print("[green]no problems found[/]")
        return
    console.print(f"[yellow]{s.problem_count} problem(s):[/]")
    for heading, items in groups:
        if not items:
            continue
        console.print(f"[yellow]{escape(heading)} ({len(items)}):[/]")
        for item in items[:MAX_SHOWN]:
            console.print(f"[yellow]  {escape(relative_to_root(item, root))}[/]")
        if len(items) > MAX_SHOWN:
            console.print(f"[yellow]  ... and {len(items) - MAX_SHOWN} more (--json lists all)[/]")
    if s.strict_relaxed and s.naming_problems:
        console.print(
            "[yellow]note: read with strict: false, so these files were skipped; a recipe using this "
            "dataset with the default strict: true fails on them[/]"
        )


# ------------------------------------------------------------------ audit
_MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")


@data.command("audit")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a recipe field (a recipe SOURCE only); repeatable.",
)
@click.option("--root", default=None, metavar="PATH", help="A manifest's audio folder (default: the manifest's).")
@click.option(
    "--column",
    type=click.Choice(["auto", "split", "fold"]),
    default="auto",
    show_default=True,
    help="A manifest's split column: 'split' (train/val/test) or 'fold' (cross-validation over its values).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="A manifest's seed for drawing validation rows.")
@click.option("--no-content", is_flag=True, help="Skip the identical-audio check (no audio file is read).")
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON (as in results.json).")
def audit(
    source: Path,
    overrides: tuple[str, ...],
    root: str | None,
    column: str,
    seed: int,
    no_content: bool,
    as_json: bool,
) -> None:
    """Audit the splits of SOURCE, a recipe or a manifest with a split/fold column, before training.

    \b
    serkit data audit recipes/dev_multidomain.yaml
    serkit data audit folds/emodb.csv --root /data/emodb
    serkit data audit recipes/quickstart.yaml --set protocol.type=random --json

    Lists, per domain: speakers in more than one of train / val / test (the numbers are
    then speaker-dependent), identical audio (same SHA-256) in different sets, and test
    labels absent from train or val. A recipe's splits are planned exactly as serkit run
    plans them; a manifest's are read as protocol: predefined reads them. Findings are
    information: the exit code is 0 whenever the audit ran.
    """
    from serkit.engine.audit import audit_manifest, audit_recipe
    from serkit.report.trust import audit_text

    if source.suffix.lower() in _MANIFEST_SUFFIXES:
        if overrides:
            raise click.UsageError("--set applies to a recipe; SOURCE is a manifest")
        result = audit_manifest(source, root=root, column=column, seed=seed, content=not no_content)
    else:
        from serkit.cli.common import load_recipe_arg

        if root is not None or column != "auto":
            raise click.UsageError("--root and --column apply to a manifest; SOURCE is a recipe")
        recipe, _ = load_recipe_arg(source, overrides)
        result = audit_recipe(recipe, content=not no_content)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(audit_text(result), nl=False)


# ------------------------------------------------------------------ download
@data.command("download")
@click.argument("name")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Parent folder; the corpus is unpacked into DEST/NAME.",
)
@click.option(
    "--sha256",
    default=None,
    metavar="HEX",
    help="Pin the SHA-256 of the corpus's archive yourself (after checking it); the download is verified against it.",
)
@click.option("--keep-archive", is_flag=True, help="Keep the downloaded archive in DEST/.downloads.")
@click.option("--no-progress", is_flag=True, help="No download progress bar.")
def download(name: str, dest: Path, sha256: str | None, keep_archive: bool, no_progress: bool) -> None:
    """Download, verify and unpack the public corpus of dataset NAME into DEST/NAME.

    \b
    serkit data download ravdess --dest ~/corpora --sha256 <checksum you verified>

    Only archives with a pinned SHA-256 are downloaded: for the others the command prints
    the URL and the manual steps. Licensed corpora print where to request access. A
    finished download is not repeated. Prints the root to use in recipes.
    """
    from serkit.data.download import download as fetch
    from serkit.data.download import source_for

    source = source_for(name)
    click.echo(source.describe())
    click.echo("")
    result = fetch(
        source,
        dest,
        sha256=sha256,
        progressbar=not no_progress,
        keep_archives=keep_archive,
        log=lambda msg: click.echo(msg, err=True),
    )
    click.echo(f"root: {result.root}")
    click.echo(f"in a recipe: dataset: {{type: {name}, root: {json.dumps(str(result.root))}}}")
