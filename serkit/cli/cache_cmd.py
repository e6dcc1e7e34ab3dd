"""``serkit cache ...``: list, verify, prune and export the feature stores.

The group is added to the main command line with ``cli.add_command(cache)``. Importing
this module is cheap: the logic (:mod:`serkit.features.admin`, which imports numpy) and
rich are imported when a command runs. Errors are :class:`~serkit.errors.SerkitError`
subclasses, which ``serkit``'s entry point prints as ``error: ...`` with exit code 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from serkit.features.admin import StoreInfo

__all__ = ["cache", "human_bytes"]

#: Corrupt keys listed per store by ``verify`` (all are deleted by ``--repair``).
MAX_SHOWN = 50
#: Terminal width from which ``ls`` prints one table row per store (else one block each).
WIDE = 140

_ROOT_OPTION = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the stores (default: $SERKIT_CACHE/features, else ~/.cache/serkit/features).",
)


def human_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "?"


def _root(root: Path | None) -> Path:
    from serkit.features.admin import default_root

    return root if root is not None else default_root()


@click.group()
def cache() -> None:
    """Inspect and maintain the feature stores (one SQLite file per extractor configuration,
    plus one file per shard of a sharded extraction in <store>.shards/).

    \b
    serkit cache ls                           what is cached, how big, how old
    serkit cache verify --repair              delete corrupt items, rebuild damaged store files
    serkit cache prune --older-than 30        delete stores unused for 30 days
    serkit cache export --store mfcc --format npz --out mfcc.npz
    """


# ------------------------------------------------------------------ ls
@cache.command("ls")
@_ROOT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls(root: Path | None, as_json: bool) -> None:
    """One row per store: extractor, fingerprint, params, items, size, last modified.

    Items, size and date cover the store's shard files too (``N shards`` says how many).
    """
    from serkit.features.admin import list_stores

    listing = list_stores(_root(root))
    if as_json:
        click.echo(json.dumps(listing.to_dict(), indent=2))
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if not listing.stores:
        console.print(f"no feature stores in {listing.root}", highlight=False)
    elif console.width >= WIDE:
        _print_table(console, listing.stores, f"feature stores in {listing.root}")
    else:  # a narrow terminal: one block per store, nothing cut
        console.print(f"feature stores in {listing.root}", highlight=False)
        for s in listing.stores:
            dtype = ",".join(s.dtypes) or s.store_dtype
            console.print(
                f"[bold]{s.name}[/]  {s.extractor} v{s.version}, {s.output}, dim {s.dim}, {dtype}\n"
                f"    {s.items} item(s){_shards_note(s)}, {human_bytes(s.size_bytes)}, "
                f"modified {_when(s.modified)}\n"
                f"    params: {escape(s.short_params(width=10_000))}",
                highlight=False,
                soft_wrap=True,
            )
    if listing.stores:
        total = sum(s.size_bytes for s in listing.stores)
        console.print(f"{len(listing.stores)} store(s), {human_bytes(total)}", highlight=False)
    for p in listing.problems:
        console.print(f"[yellow]warning:[/] {escape(f'{p.path}: {p.message}')}", highlight=False, soft_wrap=True)


def _shards_note(s: StoreInfo) -> str:
    return f" in {1 + len(s.shards)} files ({len(s.shards)} shards)" if s.shards else ""


def _print_table(console: Console, stores: list[StoreInfo], title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("extractor", "fingerprint", "version", "params", "output", "dim", "items", "size",
                "dtype", "modified"):
        justify = "right" if col in ("dim", "items", "size") else "left"
        # params wraps; the identifying columns never do (they are copied into --store)
        table.add_column(col, justify=justify, no_wrap=col != "params")  # type: ignore[arg-type]
    for s in stores:
        table.add_row(
            s.extractor,
            s.fingerprint,
            s.version,
            s.short_params(),
            s.output,
            str(s.dim),
            f"{s.items} ({len(s.shards)} shards)" if s.shards else str(s.items),
            human_bytes(s.size_bytes),
            ",".join(s.dtypes) or s.store_dtype,
            _when(s.modified),
        )
    console.print(table)


# ------------------------------------------------------------------ verify
@cache.command("verify")
@_ROOT_OPTION
@click.option("--store", "selector", default=None, metavar="NAME",
              help="Only this store: extractor name, fingerprint (prefix) or file name.")
@click.option("--repair", is_flag=True,
              help="Delete the corrupt items, and rebuild damaged store files from their readable items, so that "
              "the next run recomputes the rest.")
def verify(root: Path | None, selector: str | None, repair: bool) -> None:
    """Read every stored item and check its checksum, shape and values.

    Exit code 0 when every store is sound (or repaired), 1 when corrupt items or
    unreadable store files remain.
    """
    from serkit.errors import CacheError
    from serkit.features.admin import StoreProblem, find_damaged, find_store, list_stores, verify_store
    from serkit.features.store import recovery_hint

    root = _root(root)
    if selector is not None:
        try:
            stores, problems = [find_store(root, selector)], []
        except CacheError as err:
            damaged = find_damaged(root, selector)
            if len(damaged) != 1:
                raise
            stores, problems = [], [StoreProblem(damaged[0], str(err).removeprefix(f"{damaged[0]}: "))]
    else:
        listing = list_stores(root)
        stores = listing.stores
        problems = [p for p in listing.problems if p.path.suffix == ".sqlite"]
        if not stores and not problems:
            click.echo(f"no feature stores in {root}")
            return
    failed = False
    for info in stores:
        report = verify_store(info, repair=repair)
        n_bad = len(report.corrupt)
        where = f"{info.path} + {len(info.shards)} shard file(s)" if info.shards else str(info.path)
        head = f"{where}: {report.checked} item(s) checked, "
        if not n_bad:
            click.echo(head + "all sound")
            continue
        click.secho(head + f"{n_bad} corrupt", fg="red")
        for item in report.corrupt[:MAX_SHOWN]:
            in_shard = f" (in {item.file.name})" if item.file is not None and item.file != info.path else ""
            click.echo(f"  {item.key}{in_shard}: {item.reason}")
        if n_bad > MAX_SHOWN:
            click.echo(f"  ... and {n_bad - MAX_SHOWN} more")
        if repair:
            click.echo(f"  deleted {report.repaired} corrupt item(s); the next run recomputes them")
        else:
            failed = True
            click.echo("  run again with --repair to delete them (the next run recomputes them)")
    for p in problems:
        if repair:
            _salvage(p.path)
            continue
        failed = True
        hint = "" if "serkit cache" in p.message else f"; {recovery_hint(p.path)}"
        click.secho(f"{p.path}: {p.message}{hint}", fg="red")
    if failed:
        raise SystemExit(1)


def _salvage(path: Path) -> None:
    from serkit.features.admin import salvage_store_file

    done = salvage_store_file(path)
    if done.deleted:
        click.echo(f"{path}: damaged beyond its meta table; deleted (the next run recomputes its features)")
    else:
        lost = f", {done.lost} unreadable item(s) dropped" if done.lost else ""
        click.echo(f"{path}: damaged file rebuilt: {done.kept} readable item(s) kept{lost}; the next run recomputes "
                   "whatever is missing")


# ------------------------------------------------------------------ prune
@cache.command("prune")
@_ROOT_OPTION
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=None, metavar="DAYS",
              help="Stores not modified for this many days.")
@click.option("--store", "selector", default=None, metavar="NAME",
              help="This store: extractor name, fingerprint (prefix) or file name.")
@click.option("--hash-index", "hash_index", is_flag=True,
              help="Drop the audio hash index's entries of files that no longer exist.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
def prune(root: Path | None, older_than: float | None, selector: str | None, hash_index: bool, dry_run: bool,
          assume_yes: bool) -> None:
    """Delete whole stores (their files, shard files and -wal/-shm files), and/or with
    --hash-index the hash index entries of deleted audio files.

    Do not prune a store that a running extraction or training is using.
    """
    from serkit.errors import CacheError
    from serkit.features.admin import delete_store_files, find_damaged, select_prunable

    root = _root(root)
    if older_than is None and selector is None and not hash_index:
        raise click.UsageError("give --older-than DAYS, --store NAME or --hash-index (or several)")
    if hash_index:
        _prune_hash_index(root, dry_run)
        if older_than is None and selector is None:
            return
    try:
        victims = select_prunable(root, older_than_days=older_than, store=selector)
    except CacheError:
        damaged = find_damaged(root, selector) if selector is not None and older_than is None else []
        if len(damaged) != 1:
            raise
        _prune_damaged(damaged[0], dry_run, assume_yes)
        return
    if not victims:
        click.echo(f"nothing to prune in {root}")
        return
    total = sum(s.size_bytes for s in victims)
    verb = "would delete" if dry_run else "to delete"
    click.echo(f"{verb} {len(victims)} store(s), {human_bytes(total)}:")
    for s in victims:
        click.echo(f"  {_describe(s)}")
    if dry_run:
        return
    if not assume_yes and not click.confirm(f"delete {len(victims)} store(s)?", default=False):
        click.echo("nothing deleted")
        return
    freed = sum(delete_store_files(s.path) for s in victims)
    click.echo(f"deleted {len(victims)} store(s), freed {human_bytes(freed)}")


def _prune_damaged(path: Path, dry_run: bool, assume_yes: bool) -> None:
    """Delete a store file that cannot be read (and its shard files and -wal/-shm files)."""
    from serkit.features.admin import delete_store_files

    verb = "would delete" if dry_run else "to delete"
    click.echo(f"{verb} 1 damaged store: {path.name}")
    if dry_run:
        return
    if not assume_yes and not click.confirm("delete it?", default=False):
        click.echo("nothing deleted")
        return
    freed = delete_store_files(path)
    click.echo(f"deleted 1 store(s), freed {human_bytes(freed)}")


def _prune_hash_index(root: Path, dry_run: bool) -> None:
    import sqlite3

    from serkit.errors import CacheError
    from serkit.features.hash_index import HashIndex

    index = HashIndex(root)
    try:
        entries, gone = index.prune_missing(dry_run=dry_run)
    except (OSError, sqlite3.Error) as err:
        raise CacheError(f"{index.path}: cannot prune the audio hash index ({err}); deleting the file is safe") from err
    finally:
        index.close()
    verb = "would drop" if dry_run else "dropped"
    click.echo(f"hash index {index.path}: {entries} entr{'y' if entries == 1 else 'ies'}, "
               f"{verb} {gone} of files that no longer exist")


def _describe(s: StoreInfo) -> str:
    return (f"{s.path.name}  {s.items} item(s)  {human_bytes(s.size_bytes)}  "
            f"modified {_when(s.modified)}")


# ------------------------------------------------------------------ export
@cache.command("export")
@_ROOT_OPTION
@click.option("--store", "selector", required=True, metavar="NAME",
              help="Extractor name, fingerprint (prefix) or file name of the store.")
@click.option("--format", "fmt", type=click.Choice(["npy", "npz", "hdf5"]), required=True,
              help="npy: a folder of KEY.npy + index.csv; npz: one file; hdf5: one file (needs h5py).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Destination file or folder.")
@click.option("--force", is_flag=True, help="Replace an existing --out.")
def export(root: Path | None, selector: str, fmt: str, out: Path, force: bool) -> None:
    """Write a store's arrays (float32, named by their store key) to npy, npz or HDF5."""
    from serkit.features.admin import export_store

    result = export_store(_root(root), selector, fmt, out, overwrite=force)  # type: ignore[arg-type]
    click.echo(f"exported {result.items} item(s) to {result.path} ({result.format})")
