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
def report(run_dirs: tuple[Path, ...], no_html: bool) -> None:
    """Regenerate plots/*.png, report.md and report.html of run folders from their results.json.

    \b
    serkit report runs/quickstart-20240101-120000
    serkit report runs/* --no-html
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
