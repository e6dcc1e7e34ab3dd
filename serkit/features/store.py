"""An embedded, crash-safe feature store: one SQLite database per extractor fingerprint.

Layout: ``<root>/<extractor.name>-<extractor.fingerprint()>.sqlite`` holding

* ``meta(name, value)``: extractor name, version, params (JSON), dim, output kind,
  fingerprint, storage dtype, creation time, store format version;
* ``features(key, shape, dtype, data, checksum, created)``: one row per distinct audio
  content. ``key`` is :meth:`FeatureStore.key_for` of the audio file's SHA-256, ``shape``
  is a JSON list, ``data`` the raw C-order bytes of the array, ``checksum`` the CRC-32 of
  those bytes (checked on every read).

The database runs in WAL mode with ``synchronous=NORMAL``: a committed batch survives a
crash of the process, readers never block the writer nor each other, and a write is all
or nothing. Connections are opened lazily, one per process (and re-opened after a
``fork``), so a store can be handed to DataLoader worker processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from serkit.errors import CacheError

if TYPE_CHECKING:
    from serkit.interfaces.extractor import Extractor

__all__ = ["STORE_FORMAT", "FeatureStore", "StoreDtype"]

StoreDtype = Literal["float32", "float16"]

#: Version of the on-disk layout; written into ``meta`` and checked when opening.
STORE_FORMAT = "1"

#: Seconds a writer waits for another writer's transaction before giving up.
BUSY_TIMEOUT_S = 60.0

#: Keys per ``IN (...)`` query in :meth:`FeatureStore.missing` (below SQLite's limit).
_CHUNK = 500

_SCHEMA = (
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


def _checksum(data: bytes) -> str:
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


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

    Raises:
        CacheError: the file is not a SQLite database, is corrupt or unreadable, or
            belongs to another extractor configuration.
    """

    def __init__(self, root: Path, extractor: Extractor, dtype: StoreDtype = "float32") -> None:
        if dtype not in ("float32", "float16"):
            raise CacheError(f"FeatureStore dtype: expected 'float32' or 'float16', got {dtype!r}")
        self.root = Path(root)
        self.dtype: StoreDtype = dtype
        self.extractor_name = extractor.name
        self.fingerprint = extractor.fingerprint()
        self.output = extractor.output
        self.dim = int(extractor.dim)
        self.path = self.root / f"{self.extractor_name}-{self.fingerprint}.sqlite"
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        meta = {
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
        self._initialise(meta)

    # -- connection handling ------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # guarded by self._lock
            )
        except sqlite3.Error as err:
            raise CacheError(f"{self.path}: cannot open the feature store ({err})") from err
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as err:
            conn.close()
            raise CacheError(
                f"{self.path}: not a readable feature store ({err}); delete the file to rebuild it"
            ) from err
        return conn

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        if self._conn is None or self._pid != pid:
            if self._conn is not None:  # inherited through fork: leave it alone
                _INHERITED.append(self._conn)
            self._conn = self._open()
            self._pid = pid
        return self._conn

    def _run(self, what: str, fn: Any) -> Any:
        """Run ``fn(conn)`` under the lock, turning SQLite errors into CacheError."""
        with self._lock:
            conn = self._connection()
            try:
                return fn(conn)
            except sqlite3.Error as err:
                raise CacheError(f"{self.path}: {what} failed ({err})") from err

    def _initialise(self, meta: dict[str, str]) -> None:
        def init(conn: sqlite3.Connection) -> dict[str, str]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SCHEMA:
                    conn.execute(stmt)
                conn.executemany(
                    "INSERT OR IGNORE INTO meta(name, value) VALUES (?, ?)", meta.items()
                )
                rows = conn.execute("SELECT name, value FROM meta").fetchall()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return dict(rows)

        # A short-lived connection: the long-lived one is opened on first use, in the
        # process that uses it (so nothing is inherited by DataLoader workers).
        conn = self._open()
        try:
            try:
                stored = init(conn)
            except sqlite3.Error as err:
                raise CacheError(
                    f"{self.path}: not a readable feature store ({err}); "
                    "delete the file to rebuild it"
                ) from err
        finally:
            conn.close()
        for field in ("format", "extractor", "fingerprint"):
            if stored.get(field) != meta[field]:
                raise CacheError(
                    f"{self.path}: meta {field} is {stored.get(field)!r}, expected "
                    f"{meta[field]!r}; the file does not belong to this extractor configuration"
                )

    def close(self) -> None:
        """Close this process's connection (a later call re-opens it)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            elif self._conn is not None:
                _INHERITED.append(self._conn)
            self._conn = None
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
        state["_conn"] = None
        state["_pid"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, dtype={self.dtype!r})"

    # -- keys -----------------------------------------------------------------------
    def key_for(self, audio_sha256: str) -> str:
        """Key of the features of an audio file: SHA-256 hex of fingerprint + file hash."""
        return hashlib.sha256(f"{self.fingerprint}:{audio_sha256}".encode()).hexdigest()

    # -- queries --------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The ``meta`` table as a dict (values are strings; ``params`` is JSON)."""
        rows = self._run(
            "reading meta", lambda c: c.execute("SELECT name, value FROM meta").fetchall()
        )
        return dict(rows)

    def has(self, key: str) -> bool:
        """Whether features for ``key`` are stored."""
        row = self._run(
            f"looking up key {key}",
            lambda c: c.execute("SELECT 1 FROM features WHERE key = ?", (key,)).fetchone(),
        )
        return row is not None

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys of ``keys`` not in the store, once each, in first-seen order."""
        wanted = list(dict.fromkeys(keys))

        def query(conn: sqlite3.Connection) -> set[str]:
            present: set[str] = set()
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key FROM features WHERE key IN ({marks})", chunk
                ).fetchall()
                present.update(r[0] for r in rows)
            return present

        present = self._run("looking up keys", query) if wanted else set()
        return [k for k in wanted if k not in present]

    def get(self, key: str) -> np.ndarray:
        """The stored array for ``key`` as a fresh float32 array.

        Raises:
            CacheError: no such key, or the stored bytes fail their checksum.
        """
        row = self._run(
            f"reading key {key}",
            lambda c: c.execute(
                "SELECT shape, dtype, data, checksum FROM features WHERE key = ?", (key,)
            ).fetchone(),
        )
        if row is None:
            raise CacheError(f"{self.path}: no features stored for key {key}")
        shape_json, dtype, data, checksum = row
        data = bytes(data)
        if _checksum(data) != checksum:
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

    def __len__(self) -> int:
        row = self._run(
            "counting items", lambda c: c.execute("SELECT COUNT(*) FROM features").fetchone()
        )
        return int(row[0])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has(key)

    def keys(self) -> list[str]:
        """Every stored key, sorted."""
        rows = self._run(
            "listing keys", lambda c: c.execute("SELECT key FROM features ORDER BY key").fetchall()
        )
        return [r[0] for r in rows]

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
        return (key, json.dumps(list(arr.shape)), self.dtype, data, _checksum(data), time.time())

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Store ``(key, array)`` pairs in one transaction: all of them or none.

        Existing keys are overwritten. Arrays are stored in the store's dtype.

        Raises:
            CacheError: an array is not numeric/finite, or the write failed (nothing
                of this call is then stored).
        """
        rows = [self._encode(k, a) for k, a in items]
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO features(key, shape, dtype, data, checksum, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        self._run(f"writing {len(rows)} item(s)", write)

    def put(self, key: str, array: np.ndarray) -> None:
        """Store one array (see :meth:`put_many`)."""
        self.put_many([(key, array)])

    def delete(self, keys: Iterable[str]) -> int:
        """Remove ``keys`` (e.g. corrupt items to recompute); returns how many were removed."""
        wanted = list(dict.fromkeys(keys))

        def remove(conn: sqlite3.Connection) -> int:
            n = 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(wanted), _CHUNK):
                    chunk = wanted[i : i + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    n += conn.execute(
                        f"DELETE FROM features WHERE key IN ({marks})", chunk
                    ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return n

        return int(self._run("deleting items", remove)) if wanted else 0
