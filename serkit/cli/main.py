"""The ``serkit`` command line.

Importing this module is cheap: torch and the components' heavy libraries are imported
only by the commands that need them (``run``), so ``serkit --help``, ``serkit plugins``
and ``serkit validate`` answer quickly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from serkit.errors import SerkitError

__all__ = ["cli", "main"]


def _plugin_warnings() -> None:
    from serkit.plugins import get_plugin_manager

    for err in get_plugin_manager().errors:
        click.secho(f"warning: {err}", fg="yellow", err=True)


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
    help="Continue an interrupted run in this folder with its own recipe.yaml; finished runs are kept.",
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
    quiet: bool,
    nproc: int | None,
) -> None:
    """Train and evaluate RECIPE; writes results.json, report.md and checkpoints.

    \b
    serkit run recipes/quickstart.yaml --set repeats=3
    serkit run --resume runs/quickstart-20261124-101500     # after an interruption
    serkit run R.yaml --nproc 2                             # 2 DDP processes (gloo on CPU)
    torchrun --nproc-per-node 4 -m serkit run R.yaml        # the same, by hand or on a cluster
    """
    from serkit.config.recipe import load_recipe

    _plugin_warnings()
    if resume is not None:
        if recipe is not None or overrides or unset or out is not None:
            raise click.UsageError(
                "--resume RUN_DIR takes the run's own recipe.yaml; give no RECIPE, --set, --unset or --out"
            )
        recipe, out = resume / "recipe.yaml", resume
    if recipe is None:
        raise click.UsageError("missing RECIPE (or --resume RUN_DIR)")
    rec, _ = load_recipe(recipe, overrides, unset=unset)
    if nproc is not None:  # the recipe is valid: start the ranks, each runs this command without --nproc
        from serkit.engine.distributed import launch

        args = [a for n in (ctx.parent.params.get("no_plugin", ()) if ctx.parent else ()) for a in ("--no-plugin", n)]
        args.append("run")
        if resume is not None:
            args += ["--resume", str(resume)]
        else:
            args += [str(recipe), *(a for o in overrides for a in ("--set", o))]
            args += [*(a for u in unset for a in ("--unset", u)), *(["--out", str(out)] if out else [])]
        args += ["--quiet"] if quiet else []
        code = launch(nproc, args)
        if code:
            raise SystemExit(code)
        return
    from serkit.engine.distributed import distributed_session
    from serkit.engine.run import run_recipe

    with distributed_session(rec.device) as dist:  # one process, or one rank under torchrun
        run_recipe(rec, out=out, source=str(recipe), progress=not quiet, resume=resume is not None, dist=dist)


@cli.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override every variant; repeatable.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sweep folder (default: runs/<sweep name>); finished variants are kept.")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
def sweep(sweep_file: Path, overrides: tuple[str, ...], out: Path | None, quiet: bool) -> None:
    """Run the variants of SWEEP_FILE and print them side by side (e.g. the paper's Table 3)."""
    from serkit.engine.sweep import run_sweep

    _plugin_warnings()
    folder = run_sweep(sweep_file, out, overrides, progress=not quiet)
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
def compare(runs: tuple[Path, ...], fmt: str, no_std: bool) -> None:
    """One table of RUNS (run folders): rows = runs, columns = domains, cells UA / WA."""
    from serkit.report.compare import compare_table, load_results

    rows = [(p.name, load_results(p)) for p in runs]
    click.echo(compare_table(rows, fmt, std=not no_std), nl=False)  # type: ignore[arg-type]


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
    from serkit.config.recipe import load_recipe
    from serkit.errors import RecipeError

    _plugin_warnings()
    failed = 0
    for path in recipes:
        try:
            load_recipe(path, overrides)
        except RecipeError as err:
            failed += 1
            click.secho(str(err), fg="red", err=True)
        else:
            click.echo(f"{path}: ok")
    if failed:
        raise SystemExit(1)


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: SerkitError -> one clear message, exit code 2."""
    from serkit.plugins import configure_plugins

    args = list(sys.argv[1:] if argv is None else argv)
    configure_plugins(_preparse_blocked(args))
    _add_plugin_commands()
    try:
        cli.main(args=args, prog_name="serkit", standalone_mode=False)
    except SerkitError as err:
        click.secho(f"error: {err}", fg="red", err=True)
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
