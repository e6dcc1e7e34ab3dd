"""Administration of the feature stores on disk: list, verify (and repair), prune, export.

Everything here works on the store *files* (``<root>/<extractor>-<fingerprint>.sqlite``
and its shard files ``<root>/<extractor>-<fingerprint>.shards/shard-*.sqlite``, see
:mod:`serkit.features.store`) without the extractor that wrote them: the ``meta`` table
says what a store holds. A store is its main file plus its shard files: listing, verifying,
exporting and pruning cover all of them. Listing, verifying and exporting open the databases
read-only (a store's modification time is not changed by looking at it, and a cache
shared read-only is listed and verified like any other); only :func:`verify_store` with
``repair=True``, :func:`salvage_store_file` and :func:`delete_store_files` write.

A damaged database file ("database disk image is malformed") cannot be verified item by
item; :func:`salvage_store_file` (``serkit cache verify --repair``) copies every item it
can still read and verify into a new file that replaces it, and the next run recomputes
the rest.

A file in the folder that is not a readable store is reported as a
:class:`StoreProblem`, never raised, by :func:`list_stores`.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import os
import shutil
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from serkit.errors import CacheError, SerkitError
from serkit.features.sqlite_util import connect_read_only, delete_in, is_malformed, transaction
from serkit.features.store import (
    BUSY_TIMEOUT_S,
    SCHEMA,
    SHARDS_SUFFIX,
    STORE_FORMAT,
    item_checksum,
    recovery_hint,
    shard_files,
)
from serkit.paths import cache_dir

__all__ = [
    "COMPANION_SUFFIXES",
    "CorruptItem",
    "ExportFormat",
    "ExportResult",
    "Listing",
    "SalvageReport",
    "StoreInfo",
    "StoreProblem",
    "VerifyReport",
    "default_root",
    "delete_store_files",
    "export_store",
    "find_damaged",
    "find_store",
    "list_stores",
    "read_store_info",
    "salvage_store_file",
    "select_prunable",
    "verify_store",
]

ExportFormat = Literal["npy", "npz", "hdf5"]

#: Files SQLite keeps next to a database (write-ahead log, shared memory, rollback journal).
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")

#: Rows fetched per step when scanning a store (bounded memory on multi-GB stores).
_FETCH = 64
_NUMERIC_DTYPES = frozenset({"float16", "float32", "float64"})


def default_root() -> Path:
    """Where serkit keeps its feature stores: ``serkit.paths.cache_dir() / "features"``."""
    return cache_dir() / "features"


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class StoreInfo:
    """One store file, described from its ``meta`` table and the file system.

    Attributes:
        path: the ``.sqlite`` file.
        extractor: extractor name.
        fingerprint: extractor fingerprint (16 hex digits).
        version: extractor version.
        params: extractor parameters.
        output: ``"sequence"`` (items ``(L, dim)``) or ``"vector"`` (items ``(dim,)``).
        dim: feature dimension.
        items: stored arrays.
        size_bytes: bytes on disk, including the ``-wal``/``-shm`` files.
        dtypes: storage dtypes of the items (usually one).
        modified: last modification (seconds since the epoch) of the database or its log.
        store_dtype: the dtype new items are written in (``meta.dtype``).
        shards: the shard files read with the main file (sharded extraction), sorted.

    ``items``, ``size_bytes``, ``dtypes`` and ``modified`` cover the main file and its
    shard files; an item stored in two files counts once.
    """

    path: Path
    extractor: str
    fingerprint: str
    version: str
    params: dict[str, Any]
    output: str
    dim: int
    items: int
    size_bytes: int
    dtypes: tuple[str, ...]
    modified: float
    store_dtype: str
    shards: tuple[Path, ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        """The main file, then the shard files."""
        return (self.path, *self.shards)

    @property
    def shard_dir(self) -> Path:
        """The folder of the shard files (it may not exist)."""
        return self.path.with_name(self.path.stem + SHARDS_SUFFIX)

    @property
    def name(self) -> str:
        """The file name without ``.sqlite``: ``<extractor>-<fingerprint>``."""
        return self.path.stem

    def short_params(self, width: int = 48) -> str:
        """``k=v`` pairs of the parameters, cut to ``width`` characters."""
        text = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.params.items()))
        return text if len(text) <= width else text[: max(0, width - 3)] + "..."

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``serkit cache ls --json``)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "extractor": self.extractor,
            "fingerprint": self.fingerprint,
            "version": self.version,
            "params": self.params,
            "output": self.output,
            "dim": self.dim,
            "items": self.items,
            "size_bytes": self.size_bytes,
            "dtypes": list(self.dtypes),
            "store_dtype": self.store_dtype,
            "modified": self.modified,
            "shards": [str(p) for p in self.shards],
        }


@dataclass(frozen=True)
class StoreProblem:
    """A file in the stores folder that is not a readable store, and why."""

    path: Path
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "message": self.message}


@dataclass
class Listing:
    """The readable stores of a folder (sorted by file name) and the other files' problems."""

    root: Path
    stores: list[StoreInfo] = field(default_factory=list)
    problems: list[StoreProblem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "stores": [s.to_dict() for s in self.stores],
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True)
class CorruptItem:
    """A stored item that cannot be returned as it was written (``file``: where it is)."""

    key: str
    reason: str
    file: Path | None = None


@dataclass
class VerifyReport:
    """What :func:`verify_store` found in one store.

    Attributes:
        store: the store.
        checked: items read.
        corrupt: the items failing a check, sorted by key.
        repaired: corrupt items deleted (``repair=True``); the next extraction recomputes them.
    """

    store: StoreInfo
    checked: int = 0
    corrupt: list[CorruptItem] = field(default_factory=list)
    repaired: int = 0

    @property
    def ok(self) -> bool:
        """No corrupt item is left in the store."""
        return len(self.corrupt) == self.repaired


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_store` wrote: ``items`` arrays to ``path`` in ``format``."""

    path: Path
    format: str
    items: int


# ----------------------------------------------------------------------------- reading
def _connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection (does not change the database's modification time; works in a
    folder this process cannot write, see :func:`serkit.features.sqlite_util.connect_read_only`)."""
    try:
        conn = connect_read_only(path, BUSY_TIMEOUT_S)
    except sqlite3.Error as err:
        raise CacheError(f"{path}: cannot open the feature store ({err})") from err
    return conn


def _disk_usage(path: Path) -> tuple[int, float]:
    """Bytes of the database plus its companion files, and their latest mtime."""
    size = 0
    mtime = 0.0
    for p in [path, *(path.with_name(path.name + s) for s in COMPANION_SUFFIXES)]:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        size += st.st_size
        # the shared-memory index and an empty log (left by readers) say nothing about
        # when the store was last written
        if p == path or (p.name.endswith("-wal") and st.st_size > 0):
            mtime = max(mtime, st.st_mtime)
    return size, mtime


def _file_facts(path: Path, with_keys: bool) -> tuple[dict[str, str], int, set[str], set[str]]:
    """``(meta, item count, keys if with_keys, dtypes)`` of one database file."""
    conn = _connect_ro(path)
    try:
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            items = int(conn.execute("SELECT COUNT(*) FROM features").fetchone()[0])
            dtypes = {r[0] for r in conn.execute("SELECT DISTINCT dtype FROM features").fetchall()}
            keys = {r[0] for r in conn.execute("SELECT key FROM features").fetchall()} if with_keys else set()
        except sqlite3.Error as err:
            if is_malformed(err):
                raise CacheError(f"{path}: not a readable feature store ({err}); {recovery_hint(path)}") from err
            raise CacheError(f"{path}: not a serkit feature store ({err})") from err
    finally:
        conn.close()
    return meta, items, keys, dtypes


def read_store_info(path: Path) -> StoreInfo:
    """Describe one store (its main file and shard files) from the ``meta`` tables.

    Raises:
        CacheError: the main file is missing; a file is not a SQLite database, has no
            feature tables, incomplete ``meta``, a store format this serkit does not read,
            or (a shard file) another fingerprint than the main file.
    """
    path = Path(path)
    if not path.is_file():
        raise CacheError(f"{path}: no such store file")
    shards = tuple(shard_files(path))
    meta, items, keys, dtypes = _file_facts(path, with_keys=bool(shards))
    missing = [k for k in ("format", "extractor", "fingerprint", "dim", "output") if k not in meta]
    if missing:
        raise CacheError(f"{path}: not a serkit feature store (meta lacks {', '.join(missing)})")
    if meta["format"] != STORE_FORMAT:
        raise CacheError(
            f"{path}: store format {meta['format']!r}; this serkit reads format {STORE_FORMAT!r}"
        )
    try:
        params = json.loads(meta.get("params", "{}"))
        dim = int(meta["dim"])
    except (ValueError, TypeError) as err:
        raise CacheError(f"{path}: unreadable meta params/dim ({err})") from err
    if not isinstance(params, dict):
        raise CacheError(f"{path}: meta params is not a JSON object")
    for shard in shards:
        smeta, _, skeys, sdtypes = _file_facts(shard, with_keys=True)
        for fld in ("format", "fingerprint"):
            if smeta.get(fld) != meta[fld]:
                raise CacheError(
                    f"{shard}: meta {fld} is {smeta.get(fld)!r}, but its store {path.name} has "
                    f"{meta[fld]!r}; delete the shard file"
                )
        keys |= skeys
        dtypes |= sdtypes
    if shards:
        items = len(keys)
    size, mtime = 0, 0.0
    for p in (path, *shards):
        s, m = _disk_usage(p)
        size, mtime = size + s, max(mtime, m)
    return StoreInfo(
        path=path,
        extractor=meta["extractor"],
        fingerprint=meta["fingerprint"],
        version=meta.get("version", "?"),
        params=params,
        output=meta["output"],
        dim=dim,
        items=items,
        size_bytes=size,
        dtypes=tuple(sorted(dtypes)),
        modified=mtime,
        store_dtype=meta.get("dtype", "?"),
        shards=shards,
    )


def _is_companion(name: str) -> bool:
    return any(name.endswith(".sqlite" + s) for s in COMPANION_SUFFIXES)


def list_stores(root: Path | None = None) -> Listing:
    """Every store file directly in ``root`` (default :func:`default_root`).

    Files that are not readable stores (a foreign ``.sqlite``, a stray file) become
    :class:`StoreProblem` entries; SQLite's companion files and hidden temporary files
    are skipped. A missing folder gives an empty listing.

    Raises:
        CacheError: ``root`` exists but is not a readable folder.
    """
    root = Path(root) if root is not None else default_root()
    listing = Listing(root=root)
    if not root.exists():
        return listing
    if not root.is_dir():
        raise CacheError(f"{root}: not a folder; --root must be the folder holding the *.sqlite stores")
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError as err:
        raise CacheError(f"{root}: cannot list the stores folder ({err})") from err
    for p in entries:
        if p.name.startswith(".") or _is_companion(p.name):
            continue
        if p.is_dir() and p.name.endswith(SHARDS_SUFFIX):
            main = p.with_name(p.name.removesuffix(SHARDS_SUFFIX) + ".sqlite")
            if not main.is_file() and shard_files(main):
                listing.problems.append(StoreProblem(
                    p,
                    f"shard files without their store file {main.name} (ignored); opening the store "
                    "again (serkit extract or serkit run) recreates it",
                ))
            continue  # read with its main file
        if p.is_dir():
            listing.problems.append(StoreProblem(p, "a folder, not a store file (ignored)"))
            continue
        if p.suffix != ".sqlite":
            listing.problems.append(StoreProblem(p, "not a store file: stores end in .sqlite (ignored)"))
            continue
        try:
            listing.stores.append(read_store_info(p))
        except CacheError as err:
            listing.problems.append(StoreProblem(p, str(err).removeprefix(f"{p}: ")))
    return listing


def find_store(root: Path | None, selector: str) -> StoreInfo:
    """The one store of ``root`` that ``selector`` names.

    ``selector`` is a file name (with or without ``.sqlite``), a path to a store file,
    a fingerprint or a prefix of one (4+ hex digits), or an extractor name.

    Raises:
        CacheError: no store or several stores match (the message lists them).
    """
    if os.sep in selector and Path(selector).is_file():
        return read_store_info(Path(selector))
    listing = list_stores(root)
    stem = selector.removesuffix(".sqlite")
    tiers = [
        [s for s in listing.stores if s.name == stem],
        [s for s in listing.stores if s.fingerprint == selector],
        [s for s in listing.stores if len(selector) >= 4 and s.fingerprint.startswith(selector)],
        [s for s in listing.stores if s.extractor == selector],
    ]
    for matches in tiers:
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(s.name for s in matches)
            raise CacheError(
                f"store {selector!r} is ambiguous in {listing.root}: it matches {names}; "
                "give the fingerprint or the file name"
            )
    known = ", ".join(s.name for s in listing.stores) or "none"
    bad = [p for p in listing.problems if p.path.name.removesuffix(".sqlite") == stem]
    if bad:
        raise CacheError(f"{bad[0].path}: {bad[0].message}")
    raise CacheError(f"no feature store matches {selector!r} in {listing.root} (stores: {known})")


def find_damaged(root: Path | None, selector: str) -> list[Path]:
    """The store files of ``root`` that ``selector`` names (as :func:`find_store` would) but
    that cannot be read as stores (damaged, or not stores at all)."""
    wanted = selector.removesuffix(".sqlite")
    out = []
    for p in list_stores(root).problems:
        if p.path.suffix != ".sqlite" or not p.path.is_file():
            continue
        extractor, _, fingerprint = p.path.stem.rpartition("-")
        if wanted in (p.path.stem, extractor, fingerprint, str(p.path)) or (
            len(wanted) >= 4 and fingerprint.startswith(wanted)
        ):
            out.append(p.path)
    return out


# ----------------------------------------------------------------------------- rows
def _decode(shape_json: str, dtype: str, data: bytes, checksum: str, output: str, dim: int) -> np.ndarray | str:
    """The stored array (in its stored dtype), or why the row is corrupt."""
    data = bytes(data)
    if item_checksum(data) != checksum:
        return f"checksum mismatch (stored {checksum}, computed {item_checksum(data)})"
    try:
        raw_shape = json.loads(shape_json)
        if not isinstance(raw_shape, list) or not all(isinstance(s, int) and s >= 0 for s in raw_shape):
            raise ValueError("not a list of non-negative integers")
        shape = tuple(raw_shape)
    except ValueError as err:
        return f"shape {shape_json!r} is unreadable ({err})"
    if dtype not in _NUMERIC_DTYPES:
        return f"dtype {dtype!r} is not one of {', '.join(sorted(_NUMERIC_DTYPES))}"
    itemsize = np.dtype(dtype).itemsize
    if len(data) != math.prod(shape) * itemsize:
        return f"{len(data)} bytes do not hold a {dtype} array of shape {list(shape)}"
    if output == "sequence":
        ok = len(shape) == 2 and shape[0] >= 1 and shape[1] == dim
        expected = f"(L, {dim}) with L >= 1"
    else:
        ok = shape == (dim,)
        expected = f"({dim},)"
    if not ok:
        return f"shape {list(shape)} does not match the store's {output} output {expected}"
    arr = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)
    if not np.all(np.isfinite(arr)):
        return "contains NaN or infinite values"
    return arr


def _rows(conn: sqlite3.Connection, path: Path, ordered: bool) -> Iterator[tuple[Any, ...]]:
    sql = "SELECT key, shape, dtype, data, checksum FROM features" + (" ORDER BY key" if ordered else "")
    try:
        cur = conn.execute(sql)
        while True:
            rows = cur.fetchmany(_FETCH)
            if not rows:
                return
            yield from rows
    except sqlite3.Error as err:
        hint = f"; {recovery_hint(path)}" if is_malformed(err) else ""
        raise CacheError(f"{path}: reading the items failed ({err}){hint}") from err


def verify_store(store: StoreInfo | Path, *, repair: bool = False) -> VerifyReport:
    """Read every item of a store and check its checksum, shape, dtype and values.

    Every file of the store is read (the main file and its shard files); ``checked``
    counts stored rows.

    Args:
        store: a :class:`StoreInfo` or the path of a store's main file.
        repair: delete the corrupt items (in one transaction per file), so that the next
            extraction recomputes them.

    Raises:
        CacheError: the file is not a readable store, or the repair could not be written.
    """
    info = store if isinstance(store, StoreInfo) else read_store_info(Path(store))
    report = VerifyReport(store=info)
    for path in info.files:
        conn = _connect_ro(path)
        try:
            for key, shape_json, dtype, data, checksum in _rows(conn, path, ordered=False):
                report.checked += 1
                got = _decode(shape_json, dtype, data, checksum, info.output, info.dim)
                if isinstance(got, str):
                    report.corrupt.append(CorruptItem(key, got, path))
        finally:
            conn.close()
    report.corrupt.sort(key=lambda c: (c.key, str(c.file)))
    if repair and report.corrupt:
        for path in info.files:
            keys = [c.key for c in report.corrupt if c.file == path]
            if keys:
                report.repaired += _delete_keys(path, keys)
    return report


def _delete_keys(path: Path, keys: list[str]) -> int:
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as err:
        raise CacheError(f"{path}: cannot open the feature store for writing ({err})") from err
    try:
        with transaction(conn):
            return delete_in(conn, "features", "key", keys)
    except sqlite3.Error as err:
        raise CacheError(f"{path}: deleting the corrupt items failed ({err})") from err
    finally:
        conn.close()


# ----------------------------------------------------------------------------- salvage
@dataclass(frozen=True)
class SalvageReport:
    """What :func:`salvage_store_file` did to a damaged store file.

    Attributes:
        path: the file.
        kept: items read, verified and kept.
        lost: items known (from the key index) but unreadable or corrupt; at least this
            many are gone (the next run recomputes them).
        deleted: the file's meta table was unreadable, so the file was deleted (its
            store is recreated, empty, by the next extraction).
    """

    path: Path
    kept: int
    lost: int
    deleted: bool = False


def _salvage_rows(conn: sqlite3.Connection, output: str, dim: int) -> tuple[dict[str, tuple[Any, ...]], int]:
    """Every readable, sound row ``key -> (key, shape, dtype, data, checksum, created)``, and the
    count of keys seen that could not be kept."""
    rows: dict[str, tuple[Any, ...]] = {}
    sql = "SELECT key, shape, dtype, data, checksum, created FROM features"
    try:  # in table order, up to the first damaged page
        for row in conn.execute(sql):
            if not isinstance(_decode(row[1], row[2], row[3], row[4], output, dim), str):
                rows[row[0]] = tuple(row)
    except sqlite3.Error:
        pass
    keys: list[str] = []
    try:  # the keys from the primary-key index (other pages), then each missing row by key
        keys = [r[0] for r in conn.execute("SELECT key FROM features ORDER BY key")]
    except sqlite3.Error:
        pass
    lost = 0
    for key in keys:
        if key in rows:
            continue
        try:
            row = conn.execute(f"{sql} WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            row = None
        if row is not None and not isinstance(_decode(row[1], row[2], row[3], row[4], output, dim), str):
            rows[key] = tuple(row)
        else:
            lost += 1
    return rows, lost


def salvage_store_file(path: Path) -> SalvageReport:
    """Rebuild a damaged store file from what can still be read of it.

    Every item that can be read and passes its checks (:func:`verify_store`'s) is copied,
    with the ``meta`` table, into a new file that then replaces ``path`` (its ``-wal``,
    ``-shm`` and ``-journal`` files are removed first, so they cannot be applied to the new
    file). A damaged file whose ``meta`` cannot be read is deleted. Do not run it while a
    process uses the store.

    Raises:
        CacheError: the folder cannot be written, or the file is a readable SQLite
            database that is not a serkit store (it is left alone).
    """
    path = Path(path)
    try:
        conn = _connect_ro(path)
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        output, dim = meta["output"], int(meta["dim"])
    except (CacheError, sqlite3.Error, KeyError, ValueError) as err:
        if not (is_malformed(err) or isinstance(err, (KeyError, ValueError))):
            raise CacheError(f"{path}: not a serkit feature store ({err}); left as it is") from err
        for p in [path, *(path.with_name(path.name + s) for s in COMPANION_SUFFIXES)]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                raise CacheError(f"{p}: cannot delete the damaged store file ({err})") from err
        return SalvageReport(path, 0, 0, deleted=True)
    try:
        rows, lost = _salvage_rows(conn, output, dim)
    finally:
        conn.close()
    tmp = path.with_name(f".{path.name}.salvage.tmp")
    try:
        tmp.unlink(missing_ok=True)
        new = sqlite3.connect(tmp, isolation_level=None)
        try:
            with transaction(new):
                for stmt in SCHEMA:
                    new.execute(stmt)
                new.executemany("INSERT INTO meta(name, value) VALUES (?, ?)", meta.items())
                new.executemany(
                    "INSERT INTO features(key, shape, dtype, data, checksum, created) VALUES (?, ?, ?, ?, ?, ?)",
                    rows.values(),
                )
        finally:
            new.close()
        for companion in (path.with_name(path.name + s) for s in COMPANION_SUFFIXES):
            companion.unlink(missing_ok=True)
        os.replace(tmp, path)
    except (OSError, sqlite3.Error) as err:
        tmp.unlink(missing_ok=True)
        raise CacheError(f"{path}: cannot write the salvaged store ({err})") from err
    return SalvageReport(path, len(rows), lost)


# ----------------------------------------------------------------------------- prune
def select_prunable(
    root: Path | None = None,
    *,
    older_than_days: float | None = None,
    store: str | None = None,
    now: float | None = None,
) -> list[StoreInfo]:
    """The stores :func:`delete_store_files` would remove.

    Args:
        older_than_days: stores whose database and log were last modified more than
            this many days ago.
        store: a store selector (see :func:`find_store`); with ``older_than_days`` the
            store must also be that old.
        now: the current time (seconds since the epoch; default ``time.time()``).

    Raises:
        SerkitError: neither criterion is given, or ``older_than_days`` is negative.
        CacheError: ``store`` matches no store or several.
    """
    if older_than_days is None and store is None:
        raise SerkitError("cache prune: give --older-than DAYS or --store NAME (or both)")
    if older_than_days is not None and older_than_days < 0:
        raise SerkitError(f"cache prune: --older-than must be >= 0 days, got {older_than_days}")
    candidates = [find_store(root, store)] if store is not None else list_stores(root).stores
    if older_than_days is None:
        return candidates
    limit = (time.time() if now is None else now) - older_than_days * 86400.0
    return [s for s in candidates if s.modified < limit]


def delete_store_files(path: Path) -> int:
    """Delete a store: its main file, its shard files and their ``-wal``/``-shm``/``-journal``
    files; returns bytes freed.

    Do not call it while a process has the store open (a run extracting or training).

    Raises:
        CacheError: a file could not be deleted.
    """
    path = Path(path)
    folder = path.with_name(path.stem + SHARDS_SUFFIX)
    victims = [path, *(path.with_name(path.name + s) for s in COMPANION_SUFFIXES)]
    if folder.is_dir():
        victims += sorted(
            p for p in folder.iterdir()
            if p.name.startswith(("shard-", ".shard-")) and ".sqlite" in p.name
        )
    freed = 0
    for p in victims:
        try:
            size = p.stat().st_size
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise CacheError(f"{p}: cannot delete ({err})") from err
        freed += size
    try:
        folder.rmdir()
    except OSError:
        pass  # absent, or holds files that are not serkit's
    return freed


# ----------------------------------------------------------------------------- export
def _tagged(rows: Iterator[tuple[Any, ...]], rank: int, path: Path) -> Iterator[tuple[Any, ...]]:
    """``(key, rank, path, row)`` per row: merge order by key, then by file rank."""
    for row in rows:
        yield row[0], rank, path, row


def _items(info: StoreInfo) -> Iterator[tuple[str, np.ndarray]]:
    """``(key, float32 array)`` of every item of every file, sorted by key, each key once
    (the main file first); corrupt items raise."""
    conns = [(p, _connect_ro(p)) for p in info.files]
    try:
        streams = [_tagged(_rows(conn, p, ordered=True), i, p) for i, (p, conn) in enumerate(conns)]
        last = None
        for key, _, path, row in heapq.merge(*streams):
            if key == last:
                continue
            last = key
            _, shape_json, dtype, data, checksum = row
            got = _decode(shape_json, dtype, data, checksum, info.output, info.dim)
            if isinstance(got, str):
                raise CacheError(
                    f"{path}: item {key} is corrupt ({got}); run "
                    f"'serkit cache verify --store {info.fingerprint} --repair' and re-extract"
                )
            yield key, got.astype(np.float32)
    finally:
        for _, conn in conns:
            conn.close()


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _export_npy(info: StoreInfo, tmp: Path) -> int:
    tmp.mkdir()
    index = io.StringIO()
    writer = csv.writer(index, lineterminator="\n")
    writer.writerow(["key", "shape"])
    n = 0
    for key, arr in _items(info):
        np.save(tmp / f"{key}.npy", arr, allow_pickle=False)
        writer.writerow([key, _shape_text(arr.shape)])
        n += 1
    (tmp / "index.csv").write_text(index.getvalue(), encoding="utf-8")
    return n


def _export_npz(info: StoreInfo, tmp: Path) -> int:
    # written member by member (as numpy.savez does), so the whole store is never in memory
    n = 0
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in _items(info):
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)
            n += 1
    return n


def _export_hdf5(info: StoreInfo, tmp: Path, h5py: Any) -> int:
    n = 0
    with h5py.File(tmp, "w") as f:
        f.attrs["extractor"] = info.extractor
        f.attrs["fingerprint"] = info.fingerprint
        f.attrs["version"] = info.version
        f.attrs["params"] = json.dumps(info.params, sort_keys=True)
        f.attrs["output"] = info.output
        f.attrs["dim"] = info.dim
        for key, arr in _items(info):
            f.create_dataset(key, data=arr)
            n += 1
    return n


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as err:
        raise SerkitError(
            f"cache export --format hdf5 needs h5py, which cannot be imported ({err}); "
            "install it with: pip install h5py (or use --format npz / npy)"
        ) from err
    return h5py


def export_store(
    root: Path | None,
    store: str,
    fmt: ExportFormat,
    out: Path,
    *,
    overwrite: bool = False,
) -> ExportResult:
    """Write every item of a store, as float32 arrays named by their key.

    Formats:

    * ``npy``: ``out`` is a folder of ``<key>.npy`` files plus ``index.csv``
      (columns ``key,shape``, shape as ``500x768``);
    * ``npz``: one ``out`` file readable with ``numpy.load`` (member names = keys);
    * ``hdf5``: one ``out`` file with a dataset per key and the store's meta as
      attributes (needs h5py).

    The export is written under a temporary name next to ``out`` and renamed when
    complete, so ``out`` is never half written.

    Args:
        root: the stores folder (default :func:`default_root`).
        store: a store selector (see :func:`find_store`).
        fmt: ``"npy"``, ``"npz"`` or ``"hdf5"``.
        out: destination path.
        overwrite: replace an existing ``out``.

    Raises:
        SerkitError: unknown format, ``out`` exists (without ``overwrite``), or h5py
            is missing for ``hdf5``.
        CacheError: no such store, or a corrupt item (nothing is then written).
    """
    if fmt not in ("npy", "npz", "hdf5"):
        raise SerkitError(f"cache export: --format must be npy, npz or hdf5, got {fmt!r}")
    h5py = _import_h5py() if fmt == "hdf5" else None
    out = Path(out)
    if out.exists() and not overwrite:
        raise SerkitError(f"cache export: {out} already exists; remove it, choose another --out or pass --force")
    if fmt == "npy" and out.exists() and not out.is_dir():
        raise SerkitError(f"cache export: --format npy writes a folder, but {out} is a file")
    if fmt != "npy" and out.is_dir():
        raise SerkitError(f"cache export: --format {fmt} writes a file, but {out} is a folder")
    info = find_store(root, store)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SerkitError(f"cache export: cannot create {parent} ({err})") from err
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    target = tmp / "export"
    try:
        if fmt == "npy":
            n = _export_npy(info, target)
        elif fmt == "npz":
            n = _export_npz(info, target)
        else:
            n = _export_hdf5(info, target, h5py)
        _fsync_tree(target)
        if out.exists():  # overwrite: move the old export aside, then swap
            old = tmp / "old"
            os.replace(out, old)
        os.replace(target, out)
    except OSError as err:
        raise SerkitError(f"cache export: writing {out} failed ({err})") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(path=out, format=fmt, items=n)


def _fsync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
