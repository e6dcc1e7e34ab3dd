"""A stat index of audio hashes: skip re-reading files that did not change since they were hashed.

Feature store keys come from the SHA-256 of each audio file's bytes, so a second
extraction over a cached corpus used to read every file again only to find its features
stored. The index (``<stores root>/.audio-sha256.sqlite``, one table) remembers, per
absolute path, the file's size, inode, device, modification and change times (ns) and its
SHA-256. When all of them are unchanged, the file is not read again, as in ``git``,
``make`` or ``rsync``.

Safety:

* The change time (``st_ctime_ns``) cannot be set by programs (unlike the modification
  time, which ``touch -d`` or an archive extraction restores), so any write to the file
  after hashing, or its replacement by another file, is seen.
* "Racy" entries are not trusted: a file modified within :data:`RACY_SECONDS` before its
  hash was taken could change again within the same timestamp tick (file systems with 1 s
  or 2 s timestamps) without its times changing. Such files are hashed again next time,
  until they are old enough.
* The index is an accelerator only. It is written with a rollback journal (no WAL, so it
  also works on network file systems), and any error reading or writing it (a read-only
  cache folder, a locked or corrupt index) gives one warning and falls back to hashing
  every file. In a folder this process cannot write (a cache shared read-only) the index
  is only read: known files are not read again, newly hashed ones are not recorded.
* ``SERKIT_REHASH=1`` (or ``extract_features(..., rehash=True)``, ``serkit extract
  --rehash``) hashes every file and refreshes the index.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from serkit.features.sqlite_util import chunks, connect_read_only, delete_in, transaction, writable

__all__ = ["INDEX_NAME", "RACY_SECONDS", "FileStat", "HashIndex", "rehash_forced"]

#: File name of the index in the stores folder (hidden: ``serkit cache ls`` skips it).
INDEX_NAME = ".audio-sha256.sqlite"
#: A file changed less than this many seconds before it was hashed is hashed again next time.
RACY_SECONDS = 2.0
#: Seconds to wait for another process's write to the index before skipping ours.
BUSY_TIMEOUT_S = 10.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hashes ("
    " path TEXT PRIMARY KEY,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL,"
    " ctime_ns INTEGER NOT NULL,"
    " inode INTEGER NOT NULL,"
    " device INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " hashed_ns INTEGER NOT NULL)"
)


def rehash_forced() -> bool:
    """Whether the environment asks to hash every file (``SERKIT_REHASH`` set to 1/true/yes)."""
    return os.environ.get("SERKIT_REHASH", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class FileStat:
    """What identifies a file's contents without reading it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str) -> FileStat | None:
        """The stat of ``path`` (following symlinks), or None when it cannot be read."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def settled_before(self, when_ns: int) -> bool:
        """Whether the file's last change is at least :data:`RACY_SECONDS` before ``when_ns``."""
        margin = int(RACY_SECONDS * 1e9)
        return max(self.mtime_ns, self.ctime_ns) <= when_ns - margin


class HashIndex:
    """``path -> SHA-256`` for files whose stat is unchanged since they were hashed.

    Args:
        folder: the stores folder; the index is ``folder / INDEX_NAME``.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / INDEX_NAME
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._broken = False

    def __repr__(self) -> str:
        return f"HashIndex({str(self.path)!r})"

    def _disable(self, what: str, err: BaseException) -> None:
        if not self._broken:
            warnings.warn(
                f"{self.path}: the audio hash index cannot be {what} ({err}); every audio file is "
                "hashed again on each extraction (slower, results unchanged)",
                stacklevel=3,
            )
        self._broken = True
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = None  # a connection inherited through fork() is left alone
            if self._read_only():
                conn = connect_read_only(self.path, BUSY_TIMEOUT_S)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=DELETE")
                conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _read_only(self) -> bool:
        """Whether the index's folder exists but this process cannot write it."""
        return self.path.parent.is_dir() and not writable(self.path.parent)

    def lookup(self, stats: dict[str, FileStat]) -> dict[str, str]:
        """The known SHA-256 of each path whose stat matches its entry and is not racy.

        Args:
            stats: absolute path -> its current :class:`FileStat`.
        """
        if self._broken or not stats or (self._conn is None and not self.path.exists()):
            return {}
        paths = list(stats)
        found: dict[str, str] = {}
        try:
            conn = self._connection()
            for chunk in chunks(paths):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, device, sha256, hashed_ns"
                    f" FROM hashes WHERE path IN ({marks})",
                    chunk,
                ).fetchall()
                for path, size, mtime, ctime, inode, device, sha, hashed in rows:
                    st = stats[path]
                    if st == FileStat(size, mtime, ctime, inode, device) and st.settled_before(hashed):
                        found[path] = sha
        except (sqlite3.Error, OSError) as err:
            self._disable("read", err)
            return {}
        return found

    def record(self, entries: Iterable[tuple[str, FileStat, str]], hashed_ns: int) -> int:
        """Remember ``(absolute path, stat taken before hashing, sha256)`` entries.

        Args:
            entries: the files hashed; ``hashed_ns`` is when hashing started
                (``time.time_ns()``), so only files settled before it are written.

        Returns:
            How many entries were written (racy ones are left out).
        """
        rows = [
            (p, st.size, st.mtime_ns, st.ctime_ns, st.inode, st.device, sha, hashed_ns)
            for p, st, sha in entries
            if st.settled_before(hashed_ns)
        ]
        if self._broken or not rows or self._read_only():
            return 0
        try:
            with transaction(self._connection()) as conn:
                conn.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except (sqlite3.Error, OSError) as err:
            self._disable("written", err)
            return 0
        return len(rows)

    def forget(self, paths: Sequence[str]) -> None:
        """Drop the entries of ``paths`` (e.g. files that could not be read)."""
        if self._broken or not paths or self._read_only():
            return
        try:
            delete_in(self._connection(), "hashes", "path", paths)
        except (sqlite3.Error, OSError) as err:
            self._disable("written", err)

    def prune_missing(self, dry_run: bool = False) -> tuple[int, int]:
        """Drop the entries of files that no longer exist (or, with ``dry_run``, count them).

        Returns:
            ``(entries, of which missing)``; ``(0, 0)`` when there is no index.

        Raises:
            OSError, sqlite3.Error: the index cannot be read or written (an explicit
                maintenance command should say so rather than warn).
        """
        if not self.path.exists():
            return 0, 0
        conn = self._connection()
        paths = [row[0] for row in conn.execute("SELECT path FROM hashes").fetchall()]
        gone = [p for p in paths if not os.path.exists(p)]
        if gone and not dry_run:
            with transaction(conn):
                delete_in(conn, "hashes", "path", gone)
        return len(paths), len(gone)

    def close(self) -> None:
        """Close this process's connection (reopened on the next use)."""
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None
