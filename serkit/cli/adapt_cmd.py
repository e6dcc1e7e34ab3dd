"""``serkit adapt`` and ``serkit learning-curve``: a new language from a handful of labels.

Both start from a trained run (``serkit run``) and add a new domain whose dataset is named
on the command line; see :mod:`serkit.engine.curve`. Importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

__all__ = ["adapt", "learning_curve_cmd"]


def _dataset_spec(dataset: str, root: str | None, params: tuple[str, ...]) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": dataset}
    if root is not None:
        spec["root"] = root
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--param: expected KEY=VALUE, got {item!r}")
        spec[key] = yaml.safe_load(value)
    return spec


def _freeze(value: str) -> list[str]:
    return [] if value.strip() in ("", "none") else [p.strip() for p in value.split(",") if p.strip()]


def _common(fn: Any) -> Any:
    options = [
        click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path)),
        click.option("--domain", required=True, help="Id of the new domain, e.g. ur."),
        click.option("--dataset", required=True, help="Dataset type of the new domain (see 'serkit plugins')."),
        click.option("--root", default=None, help="The dataset's root folder (its 'root' param)."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Another dataset param."),
        click.option(
            "--freeze",
            default="encoders,fusion,heads",
            show_default=True,
            help="Parts of the trained run kept fixed ('none' to fine-tune everything).",
        ),
        click.option("--checkpoint", default="best", show_default=True, help="Run id of the run to start from."),
        click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a recipe value."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder."),
        click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _base(opts: dict[str, Any], shots: int | None, fusion_from: str | None) -> dict[str, Any]:
    """The adaptation recipe data from the common options."""
    from serkit.config.loader import LineMap, apply_overrides
    from serkit.engine.curve import adaptation_recipe

    data = adaptation_recipe(
        opts["run_dir"],
        opts["domain"],
        _dataset_spec(opts["dataset"], opts["root"], opts["params"]),
        shots=shots,
        freeze=_freeze(opts["freeze"]),
        checkpoint=opts["checkpoint"],
        fusion_from=fusion_from,
    )
    return apply_overrides(data, list(opts["overrides"]), LineMap())


@click.command()
@_common
@click.option("--shots", type=click.IntRange(min=1), default=None, help="K labelled training utterances per class.")
@click.option("--fusion-from", default=None, help="Start the new domain's gate/NAS from this existing domain's.")
@click.option("--dry-run", is_flag=True, help="Print the recipe and stop.")
def adapt(shots: int | None, fusion_from: str | None, dry_run: bool, **opts: Any) -> None:
    """Add a new domain (language) to a trained run: its encoders and fusion are kept (and
    frozen by default); the new domain gets its own gate, NAS connections and head.

    \b
    serkit adapt runs/en-multi --domain ur --dataset urdu --root data/urdu --shots 20
    serkit adapt runs/en-multi --domain ur --dataset manifest --param path=ur.csv --dry-run
    """
    from serkit.config.recipe import validate_recipe_data

    data = _base(opts, shots, fusion_from)
    if dry_run:
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
        return
    recipe = validate_recipe_data(data, source="serkit adapt")
    from serkit.engine.run import run_recipe

    run_recipe(recipe, out=opts["out"], source="serkit adapt", progress=not opts["quiet"])


@click.command("learning-curve")
@_common
@click.option("--shots", "shots_text", default="5,10,20,50,all", show_default=True, help="K values, comma-separated.")
@click.option(
    "--methods", default="adapt,scratch,probe,zero_shot", show_default=True, help="Methods, comma-separated."
)
@click.option(
    "--fusion-from",
    default=None,
    help="Existing domain whose gate/NAS the new domain starts from (adapt) and whose fused representation "
    "the probe reads.",
)
def learning_curve_cmd(shots_text: str, methods: str, fusion_from: str | None, **opts: Any) -> None:
    """UA of a new domain vs the number K of labelled utterances per class, for adaptation
    from RUN_DIR, training from scratch, a linear probe and cross-lingual zero-shot.

    Writes OUT/curve.md, curve.csv, curve.json, curve.png and one run folder per (K, method);
    rerunning continues where it stopped.

    \b
    serkit learning-curve runs/en-multi --domain ur --dataset urdu --root data/urdu \\
        --fusion-from en --set repeats=5 --out runs/ur-curve
    """
    from serkit.engine.curve import learning_curve, parse_shots

    ks = parse_shots(shots_text)
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    data = _base(opts, None, None)
    out = opts["out"] if opts["out"] is not None else Path("runs") / f"{data['name']}-curve"
    curve = learning_curve(
        data, opts["domain"], ks, out, methods=method_list, fusion_from=fusion_from, progress=not opts["quiet"]
    )
    from serkit.engine.curve import curve_table

    click.echo(curve_table(curve, "markdown", "ua"), nl=False)
    click.echo(f"curve: {out / 'curve.md'}  plot: {out / 'curve.png'}")
