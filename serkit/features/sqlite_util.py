"""SQLite helpers shared by the feature store, its admin commands and the audio hash index."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CHUNK", "MALFORMED", "chunks", "connect_read_only", "delete_in", "is_malformed", "transaction", "writable"]

#: Values per ``IN (...)`` query (below SQLite's limit on bound parameters).
CHUNK = 500


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (Ctrl-C included).

    ``conn`` must be in autocommit mode (``isolation_level=None``): transactions are
    explicit. ``IMMEDIATE`` takes the write lock at once, so two writers wait for each
    other (the connection's busy timeout) instead of failing at commit.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def chunks(values: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``values`` in consecutive slices of at most ``size``."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def delete_in(conn: sqlite3.Connection, table: str, column: str, values: Sequence[str]) -> int:
    """``DELETE FROM table WHERE column IN values``, a chunk at a time; returns the rows deleted.

    ``table`` and ``column`` are serkit's own identifiers, never user input.
    """
    n = 0
    for chunk in chunks(values):
        marks = ",".join("?" * len(chunk))
        n += conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", list(chunk)).rowcount
    return n


#: Texts of SQLite errors that mean the file itself is damaged (not locked or busy).
MALFORMED = ("malformed", "not a database", "file is encrypted", "disk image")


def is_malformed(err: BaseException) -> bool:
    """Whether a SQLite error says the database file is damaged."""
    text = str(err).lower()
    return isinstance(err, sqlite3.DatabaseError) and any(m in text for m in MALFORMED)


def writable(path: Path) -> bool:
    """Whether this process may write ``path`` (a folder: create files in it); False on a
    read-only file system or without permission."""
    return os.access(path, os.W_OK)


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection to an existing database (SQLite URI ``mode=ro``).

    In a folder this process cannot write (a cache shared read-only, a read-only mount),
    SQLite cannot create the ``-shm`` index a WAL database needs, so the file is opened
    ``immutable`` there: read as it is on disk, without locks. A non-empty ``-wal`` log left
    next to it is used when SQLite can (``mode=ro`` first), else ignored.

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    path = Path(path)
    uri = path.resolve().as_uri()
    if writable(path.parent):
        return sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError:
            conn.close()
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, check_same_thread=False)
