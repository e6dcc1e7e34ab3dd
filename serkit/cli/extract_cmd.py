"""``serkit extract RECIPE``: compute every feature stream of a recipe's datasets, no training.

What a cluster array job runs before training: ``serkit extract R.yaml --shard $I/$N`` on
N machines fills one feature store (one shard file each, see :mod:`serkit.features.store`),
and the ``serkit run R.yaml`` that follows finds everything cached. Under ``torchrun``
without ``--shard``, each rank takes the shard ``RANK/WORLD_SIZE``.

Importing this module is cheap: the recipe, datasets, extractors and the driver are
imported when the command runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click

__all__ = ["extract", "parse_shard"]

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4" -> (1, 4)``.

    Raises:
        click.UsageError: not ``i/n`` with ``0 <= i < n``.
    """
    m = _SHARD_RE.match(text)
    if m is None or not int(m.group(1)) < int(m.group(2)):
        raise click.UsageError(f"--shard: expected i/n with 0 <= i < n, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def torchrun_shard(environ: Any = None) -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` when started by torchrun with several processes, else None."""
    env = os.environ if environ is None else environ
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    except (KeyError, ValueError):
        return None
    return (rank, world) if world > 1 and 0 <= rank < world else None


@click.command("extract")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shard", "shard_text", default=None, metavar="I/N",
              help="Extract only shard I of N (0-based; stable by audio content), into its own file "
                   "of the store. Default under torchrun: RANK/WORLD_SIZE; else everything.")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a recipe field; repeatable.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--rehash", is_flag=True,
              help="Read and hash every audio file, even those the stat index knows unchanged "
                   "(same as SERKIT_REHASH=1).")
def extract(recipe: Path, shard_text: str | None, overrides: tuple[str, ...], quiet: bool, rehash: bool) -> None:
    """Compute and cache the features of RECIPE's datasets (every stream), without training.

    \b
    serkit extract recipes/quickstart.yaml
    serkit extract R.yaml --shard 3/8                   # machine 3 of 8 (array job)
    serkit extract R.yaml --set data.extract_executor=process --set data.extract_workers=4

    Runs resume: what is cached is skipped. Audio files unchanged since they were last
    hashed (same size, inode and times) are not read again; --rehash reads them all.
    Bad audio stops the command (exit code 2) unless the recipe says
    data.on_bad_audio: skip; skipped files are listed.
    """
    shard = parse_shard(shard_text) if shard_text is not None else torchrun_shard()
    from serkit.cli.common import load_recipe_arg, plugin_warnings

    plugin_warnings()
    rec, _ = load_recipe_arg(recipe, overrides)
    run_extraction(rec, shard=shard, progress=not quiet, shard_note="" if shard_text else "from torchrun",
                   rehash=rehash)


def run_extraction(
    rec: Any, *, shard: tuple[int, int] | None, progress: bool, shard_note: str = "", rehash: bool = False
) -> int:
    """Extract every stream x domain of a validated recipe, printing one line each.

    Returns:
        The number of utterances skipped for bad audio (``data.on_bad_audio: skip``).
    """
    from serkit.engine.prepare import extraction_options, load_domains, store_root
    from serkit.features.driver import extract_features
    from serkit.features.store import FeatureStore
    from serkit.plugins import get_plugin_manager

    registry = get_plugin_manager().registry
    domains = load_domains(rec)
    root = store_root(rec)
    note = f", {shard_note}" if shard_note else ""
    where = f" (shard {shard[0]}/{shard[1]}{note})" if shard else ""
    n_utts = sum(len(u) for u in domains.values())
    click.echo(f"serkit extract {rec.name}: {len(rec.features)} stream(s) x {len(domains)} domain(s), "
               f"{n_utts} utterances{where} -> {root}")
    failed = 0
    for sid, spec in rec.features.items():
        extractor = registry.create("extractor", spec.extractor)
        with FeatureStore(root, extractor, dtype=rec.store.dtype) as store:
            for d, utts in domains.items():
                res = extract_features(
                    utts,
                    extractor,
                    store,
                    **extraction_options(rec),
                    on_bad_audio=rec.data.on_bad_audio,
                    progress=progress,
                    description=f"{sid} [{d}]",
                    shard=shard,
                    rehash=rehash,
                )
                failed += len(res.failed)
                others = f", {res.other_shards} left to other shards" if shard else ""
                rtf = f", RTF x{res.real_time_factor:.1f}" if res.computed else ""
                click.echo(
                    f"  {sid} [{d}]: {res.computed} computed, {res.cached} cached, {len(res.failed)} failed"
                    f"{others} ({res.seconds:.1f} s, {res.executor} executor{rtf}; {res.hashed} file(s) hashed)"
                )
                for uid, path, msg in res.failed[:20]:
                    click.echo(f"    skipped {uid} ({path}): {msg}")
                if len(res.failed) > 20:
                    click.echo(f"    ... and {len(res.failed) - 20} more")
        click.echo(f"  store {sid}: {store.path}")
    return failed
