"""SQLite helpers shared by the feature store, its admin commands and the audio hash index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["CHUNK", "chunks", "delete_in", "transaction"]

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
