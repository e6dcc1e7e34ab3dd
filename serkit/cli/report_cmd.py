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
def report(run_dirs: tuple[Path, ...], no_html: bool, tsne_compare: Path | None, domain: str | None) -> None:
    """Regenerate plots/*.png, report.md and report.html of run folders from their results.json.

    \b
    serkit report runs/quickstart-20240101-120000
    serkit report runs/* --no-html
    serkit report runs/no_aux runs/aux --tsne-compare tsne.png --domain en
    """
    from serkit.report.compare import load_results
    from serkit.report.html import write_html
    from serkit.report.plots import write_plots
    from serkit.report.results import write_report

    for run_dir in run_dirs:
        results = load_results(run_dir)
        md = write_report(run_dir, results)
        plots = write_plots(run_dir, results)
        written = [md, *plots]
        if not no_html:
            written.append(write_html(run_dir, results, plots))
        click.echo(f"{run_dir}: {len(plots)} plot(s), " + ", ".join(p.name for p in written if p.suffix != ".png"))
    if tsne_compare is not None:
        if domain is None:
            raise click.UsageError("--tsne-compare needs --domain")
        from serkit.report.plots import plot_tsne_runs

        click.echo(f"t-SNE comparison: {plot_tsne_runs(list(run_dirs), domain, tsne_compare)}")
