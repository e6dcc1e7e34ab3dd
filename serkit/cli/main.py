"""The ``serkit`` command line.

Importing this module is cheap: torch and the components' heavy libraries are imported
only by the commands that need them (``run``), so ``serkit --help``, ``serkit plugins``
and ``serkit validate`` answer quickly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from serkit.cli.common import load_recipe_arg, plugin_warnings
from serkit.errors import SerkitError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="serkit", prog_name="serkit")
@click.option(
    "--no-plugin",
    "no_plugin",
    multiple=True,
    metavar="NAME",
    help="Do not load this plugin (entry-point or distribution name); repeatable.",
)
def cli(no_plugin: tuple[str, ...]) -> None:
    """serkit: multilingual speech emotion recognition for low-resource languages.

    \b
    serkit run recipes/quickstart.yaml      train and evaluate a recipe
    serkit validate R.yaml                  check a recipe, listing every problem
    serkit plugins                          list every component and who provides it
    serkit schema                           JSON schema of recipes
    """


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a recipe field; repeatable.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default: runs/<name>-<timestamp>).",
)
@click.option("--unset", "unset", multiple=True, metavar="PATH", help="Remove a recipe entry (e.g. domains.de).")
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Continue the interrupted run in this folder (with its recipe.yaml, or RECIPE if given, which must be "
    "the same); finished runs are kept.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Delete the runs, checkpoints and results of the run already in --out before this run.",
)
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Train with DistributedDataParallel in N processes on this machine (runs torchrun for you).",
)
@click.pass_context
def run(
    ctx: click.Context,
    recipe: Path | None,
    overrides: tuple[str, ...],
    out: Path | None,
    unset: tuple[str, ...],
    resume: Path | None,
    overwrite: bool,
    quiet: bool,
    nproc: int | None,
) -> None:
    """Train and evaluate RECIPE; writes results.json, report.md and checkpoints.

    \b
    serkit run recipes/quickstart.yaml --set repeats=3
    serkit run quickstart                                   # a recipe bundled with serkit ('serkit recipes')
    serkit run --resume runs/quickstart-20261124-101500     # after an interruption
    serkit run R.yaml --out runs/r --overwrite              # replace the run in runs/r
    serkit run R.yaml --nproc 2                             # 2 DDP processes (gloo on CPU)
    torchrun --nproc-per-node 4 -m serkit run R.yaml        # the same, by hand or on a cluster
    """

    plugin_warnings()
    given = recipe  # as given on the command line (None: the run folder's own recipe.yaml)
    if resume is not None:
        if overwrite:
            raise click.UsageError("give --resume or --overwrite, not both")
        if out is not None and out != resume:
            raise click.UsageError("--resume RUN_DIR continues the run in RUN_DIR; give no other --out")
        if recipe is None:
            if overrides or unset:
                raise click.UsageError("--set/--unset with --resume need the RECIPE they change")
            if not (resume / "recipe.yaml").is_file():
                raise SerkitError(f"--resume {resume}: no recipe.yaml there; is it a folder written by 'serkit run'?")
            recipe = resume / "recipe.yaml"
        out = resume
    if recipe is None:
        raise click.UsageError("missing RECIPE (or --resume RUN_DIR)")
    rec, recipe = load_recipe_arg(recipe, overrides, unset)
    if nproc is not None:  # the recipe is valid: start the ranks, each runs this command without --nproc
        from serkit.engine.distributed import launch

        args = [a for n in (ctx.parent.params.get("no_plugin", ()) if ctx.parent else ()) for a in ("--no-plugin", n)]
        args.append("run")
        args += [str(given), *(a for o in overrides for a in ("--set", o))] if given is not None else []
        args += [*(a for u in unset for a in ("--unset", u))]
        args += ["--resume", str(resume)] if resume is not None else (["--out", str(out)] if out else [])
        args += ["--overwrite"] if overwrite else []
        args += ["--quiet"] if quiet else []
        code = launch(nproc, args, device=rec.device)  # on CUDA, checks one GPU per process first
        if code:
            raise SystemExit(code)
        return
    from serkit.engine.distributed import distributed_session
    from serkit.engine.run import run_recipe

    with distributed_session(rec.device) as dist:  # one process, or one rank under torchrun
        run_recipe(
            rec, out=out, source=str(recipe), progress=not quiet, resume=resume is not None, dist=dist,
            overwrite=overwrite,
        )


@cli.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override every variant; repeatable.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sweep folder (default: runs/<sweep name>); finished variants are kept.")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
def sweep(sweep_file: Path, overrides: tuple[str, ...], out: Path | None, quiet: bool) -> None:
    """Run the variants of SWEEP_FILE and print them side by side (e.g. the paper's Table 3)."""
    from serkit.bundled import resolve_recipe
    from serkit.engine.sweep import run_sweep

    plugin_warnings()
    folder = run_sweep(resolve_recipe(sweep_file), out, overrides, progress=not quiet)
    click.echo((folder / "table.md").read_text())
    click.echo(f"tables: {folder / 'table.md'}  {folder / 'table.csv'}")


@cli.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="New folder to write.")
@click.option("--checkpoint", default=None, help="Run id such as r0-f1 (default: best validation UA).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["folder", "onnx"]),
    default="folder",
    show_default=True,
    help="folder: safetensors + JSON for serkit.load_model; onnx: one .onnx per domain (the classifier on "
    "top of the features) plus serkit_onnx.json (needs 'serkit[onnx]').",
)
def export_cmd(run_dir: Path, out: Path, checkpoint: str | None, fmt: str) -> None:
    """Write a self-contained model folder (safetensors + JSON, checksummed) for serkit.load_model,
    or with --format onnx the classifier on top of the features as ONNX files."""
    from serkit.export import export_model, export_onnx

    folder = (export_onnx if fmt == "onnx" else export_model)(run_dir, out, checkpoint)
    click.echo(f"exported {run_dir} -> {folder}")


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv"]), default="markdown", show_default=True)
@click.option("--no-std", is_flag=True, help="Means only.")
@click.option(
    "--metric", type=click.Choice(["ua", "wa", "macro_f1"]), default="ua", show_default=True,
    help="Metric of the differences between runs.",
)
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Level at which a difference is marked significant.")
@click.option("--against", default=None, metavar="NAME", help="Only the differences of every run with this one.")
@click.option("--differences-csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the differences as CSV to this file.")
def compare(
    runs: tuple[Path, ...], fmt: str, no_std: bool, metric: str, alpha: float, against: str | None,
    differences_csv: Path | None,
) -> None:
    """One table of RUNS (run folders): rows = runs, columns = domains, cells UA / WA.

    In markdown, the table is followed by the differences between the runs per domain
    (mean difference, 95 % interval, p-value): paired t-test over the runs sharing
    (repeat, fold), else Welch's unpaired t-test, labelled as such. A sweep folder stands
    for its variants; given only sweep folders, each variant is compared with the
    variant of the same name in the other sweeps.

    \b
    serkit compare runs/t3/SB runs/t3/GatedNAS
    serkit compare runs/t3 --against t3/SB --differences-csv diffs.csv
    serkit compare runs/sweep_a runs/sweep_b        # variant by variant
    """
    from serkit.io import atomic_write_text
    from serkit.report import significance
    from serkit.report.compare import compare_table, load_results

    rows: list[tuple[str, Any]] = []
    sweeps: dict[str, list[str]] = {}  # a sweep folder (no results.json, variants below): its rows
    for p in runs:
        variants = [] if (p / "results.json").is_file() else sorted(c.parent for c in p.glob("*/results.json"))
        sweeps.update({p.name: [f"{p.name}/{v.name}" for v in variants]} if variants else {})
        rows += [(f"{p.name}/{v.name}", load_results(v)) for v in variants] or [(p.name, load_results(p, True))]
    click.echo(compare_table(rows, fmt, std=not no_std), nl=False)  # type: ignore[arg-type]
    pairs = None
    if len(sweeps) == len(runs) > 1 and against is None:  # sweeps side by side: each variant with its namesakes
        first, *others = sweeps.values()
        pairs = [(a, b) for a in first for o in others for b in o if a.split("/", 1)[1] == b.split("/", 1)[1]]
    diffs = significance.differences(rows, metric, against, pairs=pairs)
    if fmt == "markdown" and diffs:
        click.echo("\n" + significance.differences_markdown(diffs, alpha), nl=False)
    if differences_csv is not None:
        atomic_write_text(differences_csv, significance.differences_csv(diffs, alpha))


@cli.command()
@click.argument("recipes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a recipe field; repeatable.",
)
def validate(recipes: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check RECIPES without running them; report every problem with its path and line."""
    from serkit.errors import RecipeError

    plugin_warnings()
    failed = 0
    for path in recipes:
        try:
            load_recipe_arg(path, overrides)
        except RecipeError as err:
            failed += 1
            click.secho(str(err), fg="red", err=True)
        else:
            click.echo(f"{path}: ok")
    if failed:
        raise SystemExit(1)


@cli.command("recipes")
@click.option("--paths", is_flag=True, help="Print each recipe's file path instead of its summary.")
def recipes_cmd(paths: bool) -> None:
    """List the recipes bundled with serkit ('serkit run NAME' runs one from any folder)."""
    from serkit.bundled import bundled_recipes

    found = bundled_recipes()
    if not found:
        raise SerkitError("no bundled recipes are installed (a serkit wheel holds them in serkit/recipes/)")
    width = max(len(r.name) for r in found)
    for r in found:
        click.echo(f"{r.name:<{width}}  {r.kind:<6}  {r.path if paths else r.summary}")


@cli.command()
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
def schema(indent: int) -> None:
    """Print the JSON schema of recipes (for editors and docs)."""
    from serkit.config.recipe import recipe_model

    click.echo(json.dumps(recipe_model().model_json_schema(), indent=indent))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List every registered component by kind, with the distribution that provides it."""
    from serkit.plugins import get_plugin_manager

    manager = get_plugin_manager()
    rows = [
        {
            "kind": kind,
            "name": name,
            "plugin": e.plugin,
            "distribution": e.distribution,
            "description": e.cls.describe(),
        }
        for kind, name, e in manager.registry
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "components": rows,
                    "plugins": [p.__dict__ for p in manager.plugins],
                    "errors": [str(e) for e in manager.errors],
                },
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="serkit components", show_lines=False)
    for col in ("kind", "name", "distribution", "description"):
        table.add_column(col)
    versions = {p.distribution: p.version for p in manager.plugins}
    for r in rows:
        dist = r["distribution"] + (
            f" {versions[r['distribution']]}" if versions.get(r["distribution"]) else ""
        )
        table.add_row(r["kind"], r["name"], dist, r["description"])
    console.print(table)
    for err in manager.errors:
        console.print(f"[yellow]warning:[/] {err}")


def _add_builtin_groups() -> None:
    from serkit.cli.adapt_cmd import adapt, learning_curve_cmd
    from serkit.cli.cache_cmd import cache
    from serkit.cli.data_cmd import data
    from serkit.cli.extract_cmd import extract
    from serkit.cli.plugin_cmd import plugin
    from serkit.cli.predict_cmd import predict
    from serkit.cli.report_cmd import report

    cli.add_command(plugin)
    cli.add_command(data)
    cli.add_command(predict)
    cli.add_command(cache)
    cli.add_command(extract)
    cli.add_command(report)
    cli.add_command(adapt)
    cli.add_command(learning_curve_cmd)


_add_builtin_groups()


def _preparse_blocked(argv: list[str]) -> list[str]:
    blocked = []
    for i, a in enumerate(argv):
        if a == "--no-plugin" and i + 1 < len(argv):
            blocked.append(argv[i + 1])
        elif a.startswith("--no-plugin="):
            blocked.append(a.split("=", 1)[1])
    return blocked


def _add_plugin_commands() -> None:
    from serkit.plugins import get_plugin_manager

    try:
        get_plugin_manager().hook.serkit_add_cli_commands(cli=cli)
    except Exception as err:  # a plugin's CLI must not break serkit's
        click.secho(f"warning: a plugin failed to add CLI commands: {err}", fg="yellow", err=True)


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """One line per warning, never the source line Python's default format adds.

    serkit's own warnings (``UserWarning``) read ``warning: <message>``; others also name
    their category and where they come from.
    """
    if category is UserWarning:
        text = f"warning: {message}"
    else:
        text = f"warning ({category.__name__}, {filename}:{lineno}): {message}"
    click.secho(text, fg="yellow", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: SerkitError -> one clear message, exit code 2."""
    import errno
    import warnings

    from serkit.plugins import configure_plugins

    warnings.showwarning = _show_warning
    args = list(sys.argv[1:] if argv is None else argv)
    configure_plugins(_preparse_blocked(args))
    _add_plugin_commands()
    try:
        cli.main(args=args, prog_name="serkit", standalone_mode=False)
    except SerkitError as err:
        click.secho(f"error: {err}", fg="red", err=True)
        raise SystemExit(2) from None
    except OSError as err:  # a write outside serkit's own helpers (plots, loggers...) on a full disk
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        from serkit.errors import StorageError

        where = err.filename if err.filename is not None else "a file"
        click.secho(f"error: {StorageError(err.errno, err.strerror, where)}", fg="red", err=True)
        raise SystemExit(2) from None
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        raise SystemExit(130) from None
    except click.ClickException as err:
        err.show()
        raise SystemExit(err.exit_code) from None
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        raise SystemExit(130) from None
