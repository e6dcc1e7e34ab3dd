"""``serkit report``: (re)generate the plots, ``report.md`` and ``report.html`` of run folders.

The command is added to the main command line with ``cli.add_command(report)``.
Importing this module is cheap: matplotlib is imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["report"]


@click.command()
@click.argument(
    "run_dirs",
    nargs=-1,
    required=True,
    metavar="RUN_DIR...",
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--no-html", is_flag=True, help="Do not write report.html (plots and report.md only).")
@click.option(
    "--tsne-compare",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write one figure with the t-SNE of the runs side by side (needs --domain).",
)
@click.option("--domain", default=None, help="Domain for --tsne-compare.")
@click.option(
    "--single-stream",
    "single",
    multiple=True,
    metavar="STREAM=RUN_DIR",
    help="A run trained on STREAM alone: its per-domain UA is drawn beside the gate weights (the paper's "
    "Fig. 4) and tabulated in report.html; repeatable. Recorded in the run folder (single_stream.json) "
    "and reused by later reports.",
)
def report(
    run_dirs: tuple[Path, ...],
    no_html: bool,
    tsne_compare: Path | None,
    domain: str | None,
    single: tuple[str, ...],
) -> None:
    """Regenerate plots/*.png, report.md and report.html of run folders from their results.json.

    \b
    serkit report runs/quickstart-20240101-120000
    serkit report runs/* --no-html
    serkit report runs/no_aux runs/aux --tsne-compare tsne.png --domain en
    serkit report runs/fig4/GatedNAS --single-stream mfcc=runs/fig4/mfcc --single-stream ge2e=runs/fig4/ge2e
    """
    import json

    from serkit.io import atomic_write_json
    from serkit.report.compare import load_results
    from serkit.report.html import write_html
    from serkit.report.plots import SINGLE_STREAM_FILE, load_single_stream, write_plots
    from serkit.report.results import write_report

    specs: list[tuple[str, Path]] = []
    for item in single:
        stream, sep, folder = item.partition("=")
        if not sep or not stream or not folder:
            raise click.BadParameter(f"expected STREAM=RUN_DIR, got {item!r}", param_hint="--single-stream")
        specs.append((stream, Path(folder)))
    if specs and len(run_dirs) > 1:
        raise click.UsageError("--single-stream applies to one run folder; give a single RUN_DIR")
    for run_dir in run_dirs:
        results = load_results(run_dir)
        single_stream = None
        if specs:
            single_stream = load_single_stream(run_dir, results, specs)
            atomic_write_json(run_dir / SINGLE_STREAM_FILE, single_stream)
        elif (run_dir / SINGLE_STREAM_FILE).is_file():
            single_stream = json.loads((run_dir / SINGLE_STREAM_FILE).read_text(encoding="utf-8"))
        md = write_report(run_dir, results)
        ua = {s: info["ua"] for s, info in single_stream.items()} if single_stream else None
        plots = write_plots(run_dir, results, ua)
        written = [md, *plots]
        if not no_html:
            written.append(write_html(run_dir, results, plots, single_stream))
        click.echo(f"{run_dir}: {len(plots)} plot(s), " + ", ".join(p.name for p in written if p.suffix != ".png"))
    if tsne_compare is not None:
        if domain is None:
            raise click.UsageError("--tsne-compare needs --domain")
        from serkit.report.plots import plot_tsne_runs

        click.echo(f"t-SNE comparison: {plot_tsne_runs(list(run_dirs), domain, tsne_compare)}")
