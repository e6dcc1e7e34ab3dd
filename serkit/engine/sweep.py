"""``serkit sweep``: run several variants of a recipe and tabulate them side by side.

A sweep file::

    name: paper_table3
    recipe: paper_multidomain.yaml      # relative to the sweep file
    set: [repeats=5]                    # overrides for every variant
    variants:
      Base: {set: ["fusion={type: concat}", domains.en.head=shared, ...]}
      MMoE: {set: ["fusion={type: mmoe, selector: ge2e}"]}
      Other: {recipe: another.yaml}     # a variant may use another recipe
      Solo: {unset: [domains.de]}       # ... or drop parts of it

Each variant runs into ``<out>/<variant>/``; ``<out>/table.md`` and ``table.csv`` hold
the comparison (rows = variants, columns = domains). ``table.md`` then lists, for every
pair of variants and domain, the UA difference with a 95 % interval and a paired t-test
over the runs sharing (repeat, fold), marking those significant at the sweep's ``alpha``
(default 0.05; see :mod:`serkit.report.significance`); ``differences.csv`` holds them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serkit.config.loader import load_yaml_with_lines, substitute_env
from serkit.errors import RecipeError
from serkit.io import atomic_write_text

__all__ = ["SweepSpec", "load_sweep", "run_sweep"]


class VariantSpec(BaseModel):
    """One row of a sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    recipe: str | None = Field(None, description="Recipe of this variant (default: the sweep's).")
    set: list[str] = Field(default_factory=list, description="dotted.path=value overrides.")
    unset: list[str] = Field(default_factory=list, description="dotted paths to remove (e.g. a domain).")


class SweepSpec(BaseModel):
    """A sweep file: a base recipe, shared overrides and named variants."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="Sweep name (default output folder runs/<name>).")
    recipe: str | None = Field(None, description="Default recipe of the variants.")
    set: list[str] = Field(default_factory=list, description="Overrides applied to every variant.")
    unset: list[str] = Field(default_factory=list, description="Paths removed in every variant.")
    variants: dict[str, VariantSpec] = Field(min_length=1, description="Variant name -> variant.")
    alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="Level at which table.md marks a difference between variants significant."
    )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file; every variant's recipe is validated too."""
    data, lines = load_yaml_with_lines(path)
    data = substitute_env(data, lines)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        problems = [
            (".".join(map(str, e["loc"])), lines.line(tuple(e["loc"])), e["msg"]) for e in err.errors()
        ]
        text = "\n".join(f"  {p} (line {ln}): {m}" for p, ln, m in problems)
        raise RecipeError(f"{path}: {len(problems)} problem(s)\n{text}", problems) from None
    for name, v in spec.variants.items():
        if (v.recipe or spec.recipe) is None:
            raise RecipeError(f"{path}: variant {name!r} has no recipe and the sweep sets none")
    return spec


def _recipe_path(sweep_path: Path, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else sweep_path.parent / p


def variant_recipes(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate every variant: name -> (validated recipe, recipe path)."""
    from serkit.config.recipe import load_recipe

    path = Path(path)
    spec = load_sweep(path)
    out: dict[str, Any] = {}
    for name, v in spec.variants.items():
        rp = _recipe_path(path, v.recipe or spec.recipe or "")
        recipe, _ = load_recipe(rp, [*spec.set, *v.set, *overrides], unset=[*spec.unset, *v.unset])
        out[name] = (recipe, rp)
    return out


def run_sweep(
    path: str | Path, out: Path | None = None, overrides: list[str] | tuple[str, ...] = (), progress: bool = True
) -> Path:
    """Run every variant (skipping those whose results.json exists, resuming unfinished ones) and write the tables."""
    from serkit.engine.run import run_recipe
    from serkit.report.compare import compare_table, load_results
    from serkit.report.significance import differences, differences_csv, differences_markdown

    spec = load_sweep(path)
    recipes = variant_recipes(path, overrides)
    out = Path(out) if out is not None else Path("runs") / spec.name
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (recipe, rp) in recipes.items():
        run_dir = out / name
        if not (run_dir / "results.json").is_file():  # an unfinished variant resumes (if its recipe is the same)
            started = run_dir.is_dir() and any(run_dir.iterdir())
            run_recipe(recipe, out=run_dir, source=str(rp), progress=progress, resume=started)
        rows.append((name, load_results(run_dir)))
    diffs = differences(rows)  # paired by (repeat, fold): the variants share their splits
    significance = differences_markdown(diffs, spec.alpha)
    table = f"# {spec.name}\n\n" + compare_table(rows, "markdown") + (f"\n{significance}" if significance else "")
    atomic_write_text(out / "table.md", table)
    atomic_write_text(out / "table.csv", compare_table(rows, "csv"))
    atomic_write_text(out / "differences.csv", differences_csv(diffs, spec.alpha))
    return out
