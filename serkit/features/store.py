"""An embedded, crash-safe feature store: SQLite databases per extractor fingerprint.

Layout, for an extractor ``<name>`` with fingerprint ``<fp>`` in the stores folder ``root``:

* ``<root>/<name>-<fp>.sqlite``, the main file: written by unsharded extraction;
* ``<root>/<name>-<fp>.shards/shard-<i>-of-<n>.sqlite``: one file per shard of a sharded
  extraction (``extract_features(..., shard=(i, n))``), so that ranks or machines sharing
  a file system never write to the same database.

A :class:`FeatureStore` reads all of them together: :meth:`~FeatureStore.get`,
:meth:`~FeatureStore.missing`, :meth:`~FeatureStore.keys` and ``len`` see the union, and
shard files written by other processes after the store was opened are found when a key
is not in the files already known. Every file has the same tables:

* ``meta(name, value)``: extractor name, version, params (JSON), dim, output kind,
  fingerprint, storage dtype, creation time, store format version (shard files also
  ``shard = "i/n"``);
* ``features(key, shape, dtype, data, checksum, created)``: one row per distinct audio
  content. ``key`` is :meth:`FeatureStore.key_for` of the audio file's SHA-256, ``shape``
  is a JSON list, ``data`` the raw C-order bytes of the array, ``checksum`` the CRC-32 of
  those bytes (checked on every read).

The main file runs in WAL mode with ``synchronous=NORMAL``: a committed batch survives a
crash of the process, readers never block the writer nor each other, and a write is all
or nothing. Shard files use a rollback journal (``journal_mode=DELETE``,
``synchronous=FULL``) instead, because WAL needs memory shared by every process using
the file and so does not work across machines on a network file system; they are
created under a temporary name and renamed into place, so a reader never sees a
half-initialised shard. Connections are opened lazily, one per file and process (and
re-opened after a ``fork``), so a store can be handed to DataLoader worker processes.

A store whose folder this process cannot write (a team's cache shared read-only, a
read-only mount) is opened **read-only** (:attr:`FeatureStore.read_only`): everything
stored is read as usual, and storing new items raises a :class:`CacheError` that says so.

A damaged database file ("database disk image is malformed") is reported with the
command that recovers it: ``serkit cache verify --store NAME --repair`` keeps every
readable item, ``serkit cache prune --store NAME --yes`` deletes the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from serkit.errors import CacheError
from serkit.features.sqlite_util import chunks, connect_read_only, delete_in, is_malformed, transaction, writable

if TYPE_CHECKING:
    from serkit.interfaces.extractor import Extractor

__all__ = [
    "SCHEMA",
    "SHARDS_SUFFIX",
    "STORE_FORMAT",
    "FeatureStore",
    "StoreDtype",
    "check_shard",
    "is_shard",
    "item_checksum",
    "shard_file_name",
    "shard_files",
]

StoreDtype = Literal["float32", "float16"]

#: Version of the on-disk layout; written into ``meta`` and checked when opening.
STORE_FORMAT = "1"

#: Seconds a writer waits for another writer's transaction before giving up.
BUSY_TIMEOUT_S = 60.0

#: Suffix of the folder next to a main file that holds its shard files.
SHARDS_SUFFIX = ".shards"


_SHARD_RE = re.compile(r"^shard-(\d+)-of-(\d+)\.sqlite$")

#: The statements that create a store file's tables (also used to rebuild a damaged one).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS features ("
    " key TEXT PRIMARY KEY,"
    " shape TEXT NOT NULL,"
    " dtype TEXT NOT NULL,"
    " data BLOB NOT NULL,"
    " checksum TEXT NOT NULL,"
    " created REAL NOT NULL)",
)

# Connections inherited through fork(): never used nor closed in the child (closing a
# copied SQLite connection can disturb the parent's locks), only kept alive.
_INHERITED: list[sqlite3.Connection] = []


def item_checksum(data: bytes) -> str:
    """The checksum stored beside an item's bytes: their CRC-32 as 8 hex digits."""
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def _shape_fits(shape_json: str, dtype: str, nbytes: int) -> bool:
    """Whether a row's shape (JSON) and dtype describe exactly ``nbytes`` bytes."""
    try:
        shape = json.loads(shape_json)
        size = np.dtype(dtype).itemsize
        n = 1
        for s in shape:
            if not isinstance(s, int) or s < 0:
                return False
            n *= s
    except (ValueError, TypeError):
        return False
    return n * size == nbytes


def is_shard(shard: Any) -> bool:
    """Whether ``shard`` is a pair of integers ``(i, n)`` with ``0 <= i < n``."""
    return (
        isinstance(shard, tuple | list)
        and len(shard) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
        and 0 <= shard[0] < shard[1]
    )


def check_shard(shard: Any, where: str = "shard") -> tuple[int, int]:
    """``shard`` as ``(i, n)`` after checking ``0 <= i < n``.

    Raises:
        CacheError: not a pair of integers with ``0 <= i < n``.
    """
    if not is_shard(shard):
        raise CacheError(f"{where}: expected (i, n) with 0 <= i < n, got {shard!r}")
    return int(shard[0]), int(shard[1])


def recovery_hint(path: Path) -> str:
    """The commands that recover the damaged store file ``path`` (its main file or a shard file)."""
    from serkit.paths import cache_dir

    main = path
    if path.parent.name.endswith(SHARDS_SUFFIX):  # a shard file: its store is the main file next to the folder
        main = path.parent.with_name(path.parent.name.removesuffix(SHARDS_SUFFIX) + ".sqlite")
    root = main.parent

    where = "" if root.resolve() == (cache_dir() / "features").resolve() else f" --root {root}"
    return (
        f"the store file is damaged; 'serkit cache verify{where} --store {main.stem} --repair' keeps its "
        f"readable items (the next run recomputes the rest), 'serkit cache prune{where} --store {main.stem} --yes' "
        "deletes the store"
    )


def shard_file_name(i: int, n: int) -> str:
    """File name of shard ``i`` of ``n``: ``shard-00002-of-00008.sqlite``."""
    return f"shard-{i:05d}-of-{n:05d}.sqlite"


def shard_files(main: Path) -> list[Path]:
    """The shard files of the store whose main file is ``main``, sorted by name."""
    folder = main.with_name(main.stem + SHARDS_SUFFIX)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as err:
        raise CacheError(f"{folder}: cannot list the shard files ({err})") from err
    return [folder / n for n in sorted(names) if _SHARD_RE.match(n)]


class FeatureStore:
    """Feature arrays of one extractor configuration, keyed by audio content.

    Args:
        root: folder holding the store files (created if missing); usually
            ``serkit.paths.cache_dir() / "features"``.
        extractor: the extractor whose outputs are stored; only its name, version,
            params, dim, output kind and fingerprint are used (the store does not keep
            the extractor, so pickling a store to a worker stays cheap).
        dtype: storage precision of new items. ``"float16"`` halves the size; arrays
            are always returned as float32.
        shard: ``(i, n)``: new items go to the file of shard ``i`` of ``n`` instead of
            the main file (``n == 1`` is the main file). Reading always covers every file.

    Raises:
        CacheError: a file is not a SQLite database, is corrupt or unreadable, or
            belongs to another extractor configuration; ``shard`` is not ``(i, n)``.
    """

    def __init__(
        self,
        root: Path,
        extractor: Extractor,
        dtype: StoreDtype = "float32",
        *,
        shard: tuple[int, int] | None = None,
    ) -> None:
        if dtype not in ("float32", "float16"):
            raise CacheError(f"FeatureStore dtype: expected 'float32' or 'float16', got {dtype!r}")
        if shard is not None:
            shard = check_shard(shard, "FeatureStore shard")
        self.root = Path(root)
        self.dtype: StoreDtype = dtype
        self.extractor_name = extractor.name
        self.fingerprint = extractor.fingerprint()
        self.output = extractor.output
        self.dim = int(extractor.dim)
        self.path = self.root / f"{self.extractor_name}-{self.fingerprint}.sqlite"
        self._conns: dict[Path, sqlite3.Connection] = {}
        self._pid: int | None = None
        self._lock = threading.RLock()
        self._shards: list[Path] = []  # shard files known (checked) so far, sorted
        self._meta = {
            "format": STORE_FORMAT,
            "extractor": self.extractor_name,
            "version": str(extractor.version),
            "params": json.dumps(
                extractor.params.model_dump(mode="json", exclude={"type"}), sort_keys=True
            ),
            "fingerprint": self.fingerprint,
            "dim": str(self.dim),
            "output": self.output,
            "dtype": dtype,
            "created": f"{time.time():.3f}",
        }
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(
                f"{self.root}: cannot create the feature store folder ({err})"
            ) from err
        #: The folder (or the main file) cannot be written: items are read, never stored.
        self.read_only = not writable(self.root) or (self.path.exists() and not writable(self.path))
        self.shard: tuple[int, int] | None = None
        self.write_path = self.path
        if self.read_only:
            if not self.path.is_file():
                raise CacheError(
                    f"{self.path}: no such feature store, and its folder {self.root} is read-only, so it cannot be "
                    "created; point SERKIT_CACHE (or the recipe's store.root) at a writable folder"
                )
            self._check_meta(self.path)
            if shard is not None and shard[1] > 1:
                raise CacheError(self._read_only_message(f"cannot create shard {shard[0]}/{shard[1]}"))
        else:
            self._initialise(self.path, self._meta, wal=True)
            if shard is not None and shard[1] > 1:
                self._set_shard(shard)
        self._refresh()

    def _read_only_message(self, what: str) -> str:
        return (
            f"{self.path}: the feature store is read-only (this process cannot write {self.root}); {what}. "
            "Point SERKIT_CACHE (or the recipe's store.root) at a writable folder to extract what is missing"
        )

    # -- layout -----------------------------------------------------------------------
    @property
    def shard_dir(self) -> Path:
        """Folder of the shard files: ``<root>/<name>-<fingerprint>.shards``."""
        return self.path.with_name(self.path.stem + SHARDS_SUFFIX)

    def files(self) -> list[Path]:
        """The database files read: the main file, then the shard files by name."""
        with self._lock:
            self._refresh()
            return [self.path, *self._shards]

    def for_shard(self, i: int, n: int) -> FeatureStore:
        """A store on the same files whose new items go to shard ``i`` of ``n``.

        The shard file is created if needed. ``n == 1`` gives a store writing to the main
        file. The returned store has its own connections; close it when done.

        Raises:
            CacheError: ``(i, n)`` is not a shard, or the shard file cannot be created.
        """
        shard = check_shard((i, n), "FeatureStore.for_shard")
        clone = FeatureStore.__new__(FeatureStore)
        clone.__setstate__(self.__getstate__())
        clone.shard = None
        clone.write_path = clone.path
        if shard[1] > 1:
            if clone.read_only:
                raise CacheError(self._read_only_message(f"cannot create shard {shard[0]}/{shard[1]}"))
            clone._set_shard(shard)
        return clone

    def _set_shard(self, shard: tuple[int, int]) -> None:
        target = self.shard_dir / shard_file_name(*shard)
        if not target.exists():
            self._create_shard_file(target, {**self._meta, "shard": f"{shard[0]}/{shard[1]}"})
        self._initialise(target, {**self._meta, "shard": f"{shard[0]}/{shard[1]}"}, wal=False)
        self.shard = shard
        self.write_path = target

    def _create_shard_file(self, target: Path, meta: dict[str, str]) -> None:
        """Create ``target`` complete (tables and meta) under a temporary name, then link it."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(f"{target.parent}: cannot create the shard folder ({err})") from err
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self._initialise(tmp, meta, wal=False)
            try:
                os.link(tmp, target)  # fails if another process created it meanwhile
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system
                if not target.exists():
                    os.replace(tmp, target)
        finally:
            for p in (tmp, tmp.with_name(tmp.name + "-journal")):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
                except OSError as err:  # pragma: no cover - left for the admin commands
                    raise CacheError(f"{p}: cannot remove a temporary file ({err})") from err

    def _refresh(self) -> bool:
        """Look for shard files created since the last call; True when some were added."""
        found = shard_files(self.path)
        if found == self._shards:
            return False
        new = [p for p in found if p not in self._shards]
        for p in new:
            self._check_meta(p)
        self._shards = found
        return bool(new)

    def _check_meta(self, path: Path) -> None:
        rows = self._on(
            path, "reading meta", lambda c: c.execute("SELECT name, value FROM meta").fetchall()
        )
        stored = dict(rows)
        for field in ("format", "extractor", "fingerprint"):
            if stored.get(field) != self._meta[field]:
                raise CacheError(
                    f"{path}: meta {field} is {stored.get(field)!r}, expected "
                    f"{self._meta[field]!r}; the file does not belong to this extractor configuration"
                )

    # -- connection handling ------------------------------------------------------
    def _open(self, path: Path, wal: bool) -> sqlite3.Connection:
        if getattr(self, "read_only", False):
            try:
                return connect_read_only(path, BUSY_TIMEOUT_S)
            except sqlite3.Error as err:
                raise CacheError(f"{path}: cannot open the read-only feature store ({err})") from err
        try:
            conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # guarded by self._lock
            )
        except sqlite3.Error as err:
            raise CacheError(f"{path}: cannot open the feature store ({err})") from err
        try:
            if wal:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            else:
                conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as err:
            conn.close()
            raise CacheError(f"{path}: not a readable feature store ({err}); {recovery_hint(path)}") from err
        return conn

    def _connection(self, path: Path) -> sqlite3.Connection:
        pid = os.getpid()
        if self._pid != pid:
            _INHERITED.extend(self._conns.values())  # inherited through fork: leave alone
            self._conns = {}
            self._pid = pid
        conn = self._conns.get(path)
        if conn is None:
            conn = self._open(path, wal=path == self.path)
            self._conns[path] = conn
        return conn

    def _on(self, path: Path, what: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` on ``path`` under the lock, turning SQLite errors into CacheError."""
        with self._lock:
            conn = self._connection(path)
            try:
                return fn(conn)
            except sqlite3.Error as err:
                hint = f"; {recovery_hint(path)}" if is_malformed(err) else ""
                raise CacheError(f"{path}: {what} failed ({err}){hint}") from err

    def _run(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` on the main file (kept for callers of the one-file API)."""
        return self._on(self.path, what, fn)

    def _initialise(self, path: Path, meta: dict[str, str], wal: bool) -> None:
        def init(conn: sqlite3.Connection) -> dict[str, str]:
            with transaction(conn):
                for stmt in SCHEMA:
                    conn.execute(stmt)
                conn.executemany(
                    "INSERT OR IGNORE INTO meta(name, value) VALUES (?, ?)", meta.items()
                )
                rows = conn.execute("SELECT name, value FROM meta").fetchall()
            return dict(rows)

        # A short-lived connection: the long-lived one is opened on first use, in the
        # process that uses it (so nothing is inherited by DataLoader workers).
        conn = self._open(path, wal)
        try:
            try:
                stored = init(conn)
            except sqlite3.Error as err:
                raise CacheError(f"{path}: not a readable feature store ({err}); {recovery_hint(path)}") from err
        finally:
            conn.close()
        for field in ("format", "extractor", "fingerprint"):
            if stored.get(field) != meta[field]:
                raise CacheError(
                    f"{path}: meta {field} is {stored.get(field)!r}, expected "
                    f"{meta[field]!r}; the file does not belong to this extractor configuration"
                )

    def close(self) -> None:
        """Close this process's connections (a later call re-opens them)."""
        with self._lock:
            if self._pid == os.getpid():
                for conn in self._conns.values():
                    conn.close()
            else:
                _INHERITED.extend(self._conns.values())
            self._conns = {}
            self._pid = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_conns"] = {}
        state["_pid"] = None
        state["_shards"] = list(self._shards)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        extra = f", shard={self.shard!r}" if self.shard else ""
        return f"FeatureStore({str(self.path)!r}, dtype={self.dtype!r}{extra})"

    # -- keys -----------------------------------------------------------------------
    def key_for(self, audio_sha256: str) -> str:
        """Key of the features of an audio file: SHA-256 hex of fingerprint + file hash."""
        return hashlib.sha256(f"{self.fingerprint}:{audio_sha256}".encode()).hexdigest()

    # -- queries --------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The main file's ``meta`` table as a dict (values are strings; ``params`` is JSON)."""
        rows = self._run(
            "reading meta", lambda c: c.execute("SELECT name, value FROM meta").fetchall()
        )
        return dict(rows)

    def _find(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """The first non-None ``fn(conn)`` over the files (new shard files included)."""
        with self._lock:
            tried: set[Path] = set()
            while True:
                for path in [self.path, *self._shards]:
                    if path in tried:
                        continue
                    tried.add(path)
                    got = self._on(path, what, fn)
                    if got is not None:
                        return got
                if not self._refresh():
                    return None

    def has(self, key: str) -> bool:
        """Whether features for ``key`` are stored (in any file)."""
        row = self._find(
            f"looking up key {key}",
            lambda c: c.execute("SELECT 1 FROM features WHERE key = ?", (key,)).fetchone(),
        )
        return row is not None

    def _present(self, path: Path, wanted: list[str]) -> set[str]:
        def query(conn: sqlite3.Connection) -> set[str]:
            present: set[str] = set()
            for chunk in chunks(wanted):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key FROM features WHERE key IN ({marks})", chunk
                ).fetchall()
                present.update(r[0] for r in rows)
            return present

        return self._on(path, "looking up keys", query)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys of ``keys`` in no file of the store, once each, in first-seen order."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return []
        with self._lock:
            self._refresh()
            present: set[str] = set()
            for path in [self.path, *self._shards]:
                left = [k for k in wanted if k not in present]
                if not left:
                    break
                present |= self._present(path, left)
        return [k for k in wanted if k not in present]

    def get(self, key: str) -> np.ndarray:
        """The stored array for ``key`` as a fresh float32 array.

        Raises:
            CacheError: no such key, or the stored bytes fail their checksum.
        """
        found = self._find(
            f"reading key {key}",
            lambda c: c.execute(
                "SELECT shape, dtype, data, checksum FROM features WHERE key = ?", (key,)
            ).fetchone(),
        )
        if found is None:
            raise CacheError(f"{self.path}: no features stored for key {key}")
        shape_json, dtype, data, checksum = found
        data = bytes(data)
        if item_checksum(data) != checksum:
            raise CacheError(
                f"{self.path}: features for key {key} are corrupt (checksum mismatch); "
                "they must be recomputed"
            )
        try:
            shape = tuple(int(s) for s in json.loads(shape_json))
            arr = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)
        except (ValueError, TypeError) as err:
            raise CacheError(
                f"{self.path}: features for key {key} are corrupt ({err}); they must be recomputed"
            ) from err
        return arr.astype(np.float32)  # always a copy: callers may write to it

    def corrupt(self, keys: Iterable[str]) -> list[str]:
        """The keys of ``keys`` stored with bytes that fail their checksum or shape, in any file.

        Reads each stored item once (one at a time: bounded memory); keys not stored are
        not listed. :func:`serkit.features.driver.extract_features` uses it to recompute
        corrupt items instead of failing later when they are read.
        """
        wanted = list(dict.fromkeys(keys))
        bad: set[str] = set()

        def scan(conn: sqlite3.Connection, chunk: Sequence[str]) -> None:
            marks = ",".join("?" * len(chunk))
            cur = conn.execute(f"SELECT key, shape, dtype, data, checksum FROM features WHERE key IN ({marks})", chunk)
            for key, shape_json, dtype, data, checksum in cur:
                if item_checksum(bytes(data)) != checksum or not _shape_fits(shape_json, dtype, len(data)):
                    bad.add(key)

        with self._lock:
            self._refresh()
            for path in [self.path, *self._shards]:
                for chunk in chunks(wanted):
                    self._on(path, "checking items", lambda c, ch=chunk: scan(c, ch))
        return [k for k in wanted if k in bad]

    def _all_keys(self) -> set[str] | int:
        """The keys of every file (a count when there is only the main file)."""
        with self._lock:
            self._refresh()
            if not self._shards:
                row = self._on(
                    self.path,
                    "counting items",
                    lambda c: c.execute("SELECT COUNT(*) FROM features").fetchone(),
                )
                return int(row[0])
            keys: set[str] = set()
            for path in [self.path, *self._shards]:
                rows = self._on(
                    path, "listing keys", lambda c: c.execute("SELECT key FROM features").fetchall()
                )
                keys.update(r[0] for r in rows)
            return keys

    def __len__(self) -> int:
        got = self._all_keys()
        return got if isinstance(got, int) else len(got)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has(key)

    def keys(self) -> list[str]:
        """Every stored key (of every file, once), sorted."""
        with self._lock:
            self._refresh()
            keys: set[str] = set()
            for path in [self.path, *self._shards]:
                rows = self._on(
                    path, "listing keys", lambda c: c.execute("SELECT key FROM features").fetchall()
                )
                keys.update(r[0] for r in rows)
        return sorted(keys)

    # -- writes ---------------------------------------------------------------------
    def _encode(self, key: str, array: np.ndarray) -> tuple[str, str, str, bytes, str, float]:
        if not isinstance(key, str) or not key:
            raise CacheError(f"{self.path}: item keys must be non-empty strings, got {key!r}")
        arr = np.asarray(array)
        if arr.dtype.kind not in "fiu":
            raise CacheError(
                f"{self.path}: item {key} has dtype {arr.dtype}; expected a numeric array"
            )
        with np.errstate(over="ignore"):
            arr = np.ascontiguousarray(arr, dtype=np.dtype(self.dtype))
        if not np.all(np.isfinite(arr)):
            hint = (
                " (values overflow float16; use dtype='float32')" if self.dtype == "float16" else ""
            )
            raise CacheError(f"{self.path}: item {key} contains NaN or infinite values{hint}")
        data = arr.tobytes()
        return (key, json.dumps(list(arr.shape)), self.dtype, data, item_checksum(data), time.time())

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Store ``(key, array)`` pairs in one transaction: all of them or none.

        They go to :attr:`write_path` (the main file, or this store's shard file).
        Existing keys of that file are overwritten. Arrays are stored in the store's dtype.

        Raises:
            CacheError: an array is not numeric/finite, or the write failed (nothing
                of this call is then stored).
        """
        rows = [self._encode(k, a) for k, a in items]
        if not rows:
            return
        if self.read_only:
            raise CacheError(self._read_only_message(f"cannot store {len(rows)} new item(s)"))

        def write(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO features(key, shape, dtype, data, checksum, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )

        self._on(self.write_path, f"writing {len(rows)} item(s)", write)

    def put(self, key: str, array: np.ndarray) -> None:
        """Store one array (see :meth:`put_many`)."""
        self.put_many([(key, array)])

    def delete(self, keys: Iterable[str]) -> int:
        """Remove ``keys`` from every file (e.g. corrupt items to recompute).

        Returns:
            How many of ``keys`` were stored (and are now removed).
        """
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return 0
        if self.read_only:
            raise CacheError(self._read_only_message(f"cannot delete {len(wanted)} item(s)"))

        def remove(conn: sqlite3.Connection, here: list[str]) -> None:
            with transaction(conn):
                delete_in(conn, "features", "key", here)

        removed: set[str] = set()
        with self._lock:
            self._refresh()
            for path in [self.path, *self._shards]:
                here = sorted(self._present(path, wanted))
                if not here:
                    continue
                self._on(path, "deleting items", lambda c, h=here: remove(c, h))
                removed.update(here)
        return len(removed)
