"""``SqliteStore``: the ``Store`` in one SQLite file (WAL journal, fsync on every commit).

Concurrency: one connection, opened with ``check_same_thread=False`` and used only under
a ``threading.Lock``. The store sees a few statements a minute (a retune, a served slot, a
finished run), so serializing them costs nothing and rules out ``SQLITE_BUSY`` inside the
process; WAL still lets other processes (the sqlite3 shell, a second instance) read while
we write, and ``busy_timeout`` makes writers from other processes wait instead of failing.

Durability: ``synchronous=FULL`` in WAL mode fsyncs the log on every commit, so a retune
is on disk when ``save_entry`` returns, even if the process is killed right after.

Times are stored as fixed-width UTC ISO 8601 text with microseconds
(``2026-01-02T03:04:05.678901+00:00``): exact, readable from the shell, and sortable as text.

The statements are ``SqlStore``'s; this module opens, checks and migrates the file and runs
each unit of work in one transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from archibald_actors.errors import StoreError
from archibald_actors.store.schema import SQLITE_MIGRATIONS, VERSION_TABLE, apply_migrations
from archibald_actors.store.sql import Session, SqlStore

__all__ = ["SqliteStore"]

_T = TypeVar("_T")


class SqliteStore(SqlStore):
    """The ``Store`` in an SQLite file; the file is created if missing, never recreated.

    Args:
        path: the database file. Its directory must exist.
        busy_timeout: seconds to wait for another process's write lock.

    ``load()`` raises ``StoreError`` naming the file if it is unreadable, corrupt, not an
    SQLite database, another program's database, or of a newer schema; such a file is left
    untouched.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        super().__init__(_SqliteDialect(self.path, busy_timeout))

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"


class _SqliteSession:
    """``Session`` on a ``sqlite3`` connection (whose marks are ``?`` already)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(query, params).fetchall()

    def count(self, query: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(query, params).rowcount

    def insert(self, query: str, params: Sequence[Any]) -> int:
        # lastrowid rather than RETURNING, which needs SQLite 3.35 (some distributions have 3.34).
        return int(self._conn.execute(query, params).lastrowid or 0)


class _SqliteDialect:
    """How ``SqliteStore`` connects and runs a unit of work: one transaction under one lock."""

    retries = False

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def time(self, moment: datetime) -> str:
        """Fixed-width UTC ISO 8601 text, microseconds: sorts as the instant does."""
        return moment.astimezone(UTC).isoformat(timespec="microseconds")

    def run(self, what: str, work: Callable[[Session], _T], *, write: bool) -> _T:
        """Run ``work`` in one transaction (``BEGIN IMMEDIATE`` if it writes); errors raise ``StoreError``."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
                try:
                    result = work(_SqliteSession(conn))
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: {what} failed: {exc}") from exc
            return result

    def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()

    def _connection(self) -> sqlite3.Connection:
        """The open connection, opening, checking and migrating the file first if needed."""
        if self._conn is None:
            conn = self._open()
            try:
                self._check_and_migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"SQLite store {self.path} is not a regular file")
        try:
            return sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

    def _check_and_migrate(self, conn: sqlite3.Connection) -> None:
        """Refuse a file that is not a healthy store of ours, then bring its schema up to date.

        Nothing is written before the checks pass, so a foreign or damaged file is left as it was.
        """
        try:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        except sqlite3.Error as exc:
            raise StoreError(
                f"SQLite store {self.path} is unreadable, corrupt or not an SQLite database ({exc});"
                " it was left untouched: restore it from a backup or move it away"
            ) from exc
        if problems != ["ok"]:
            raise StoreError(
                f"SQLite store {self.path} is corrupt ({'; '.join(map(str, problems[:3]))});"
                " it was left untouched: restore it from a backup or move it away"
            )
        if tables - {"sqlite_sequence"} and VERSION_TABLE not in tables:
            raise StoreError(
                f"{self.path} is an SQLite database of another program (tables: {', '.join(sorted(tables))});"
                " refusing to use it as the archibald store"
            )
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"SQLite store {self.path}: cannot switch to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            self._migrate(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: cannot prepare the schema: {exc}") from exc

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock first: another process starting at the same
        # moment migrates either before us (we then find its version) or after us.
        conn.execute("BEGIN IMMEDIATE")
        try:
            apply_migrations(_SqliteSession(conn), SQLITE_MIGRATIONS, where=f"SQLite store {self.path}")
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
