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
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from archibald_actors.domain import RunRecord
from archibald_actors.errors import StoreError
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store.base import ClusterStore, StoredState
from archibald_actors.store.codec import (
    ENTRY_COLUMNS,
    RUN_COLUMNS,
    VERSION_TABLE,
    apply_migrations,
    check_aware,
    check_limit,
    entry_extra,
    entry_from_row,
    run_from_row,
    slot_ms,
    stored_time,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

log = logging.getLogger(__name__)

#: Marks a database as ours and holds its schema version (one row).
_VERSION_TABLE = VERSION_TABLE

#: Migrations by version: ``_MIGRATIONS[n]`` takes the schema from version n to n + 1.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE epoch (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL)",
        """CREATE TABLE schedule_entries (
            sync_type TEXT PRIMARY KEY,
            interval_minutes REAL NOT NULL,
            start_delay_minutes REAL NOT NULL,
            priority INTEGER NOT NULL,
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            timeout_seconds REAL NOT NULL,
            extra TEXT NOT NULL DEFAULT '{}')""",
        "CREATE TABLE served (sync_type TEXT PRIMARY KEY, slot_offset REAL NOT NULL)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            sync_type TEXT NOT NULL,
            trigger TEXT NOT NULL,
            scheduled_at TEXT,
            requested_at TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT)""",
        "CREATE INDEX runs_by_type ON runs (sync_type, finished_at DESC, started_at DESC, id DESC)",
        "CREATE INDEX runs_by_finish ON runs (finished_at, started_at, id)",
        """CREATE TABLE slot_claims (
            sync_type TEXT NOT NULL,
            slot_ms INTEGER NOT NULL,
            claimed_at TEXT NOT NULL,
            UNIQUE (sync_type, slot_ms))""",
        "CREATE INDEX slot_claims_by_time ON slot_claims (claimed_at)",
    ),
    (
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sync_type TEXT NOT NULL,
            trigger TEXT NOT NULL,
            requested_at TEXT NOT NULL)""",
    ),
)

#: The schema version this code writes and reads.
SCHEMA_VERSION = len(_MIGRATIONS)


class SqliteStore:
    """The ``Store`` in an SQLite file; the file is created if missing, never recreated.

    Args:
        path: the database file. Its directory must exist.
        busy_timeout: seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # --- the Store protocol -------------------------------------------------------

    def load(self) -> StoredState:
        """Open (creating or migrating) the database and read the state to start from.

        Raises:
            StoreError: the file is unreadable, corrupt, not an SQLite database, another
                program's database, or of a newer schema; the message names the file.
        """
        state = StoredState()
        with self._transaction("load", "DEFERRED") as conn:
            row = conn.execute("SELECT epoch FROM epoch WHERE id = 1").fetchone()
            state.epoch = None if row is None else stored_time(row[0])
            for row in conn.execute(f"SELECT {ENTRY_COLUMNS} FROM schedule_entries"):
                state.entries[row[0]] = entry_from_row(row)
            for sync_type, offset in conn.execute("SELECT sync_type, slot_offset FROM served"):
                state.served[sync_type] = float(offset)
        return state

    def save_epoch(self, epoch: datetime) -> None:
        """Record the epoch of the slot grid; durable when this returns."""
        text = _to_text(epoch, "epoch")
        with self._transaction("save_epoch") as conn:
            conn.execute(
                "INSERT INTO epoch (id, epoch) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch",
                (text,),
            )

    def ensure_epoch(self, epoch: datetime) -> datetime:
        """Record ``epoch`` unless an epoch is stored already; return the stored one.

        The first writer wins, across every process sharing the file: a later caller gets
        the epoch stored first, and its own argument is dropped.

        Raises:
            InvalidValueError: ``epoch`` is naive.
        """
        text = _to_text(epoch, "epoch")
        with self._transaction("ensure_epoch") as conn:
            conn.execute("INSERT INTO epoch (id, epoch) VALUES (1, ?) ON CONFLICT (id) DO NOTHING", (text,))
            stored: str = conn.execute("SELECT epoch FROM epoch WHERE id = 1").fetchone()[0]
        return stored_time(stored)

    def save_entry(self, entry: ScheduleEntry) -> None:
        """Record a retune or pause (upsert by type); durable when this returns."""
        with self._transaction("save_entry") as conn:
            conn.execute(
                f"INSERT INTO schedule_entries ({ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (sync_type) DO UPDATE SET interval_minutes = excluded.interval_minutes,"
                " start_delay_minutes = excluded.start_delay_minutes, priority = excluded.priority,"
                " enabled = excluded.enabled, timeout_seconds = excluded.timeout_seconds,"
                " extra = excluded.extra",
                (
                    entry.sync_type,
                    float(entry.interval_minutes),
                    float(entry.start_delay_minutes),
                    int(entry.priority),
                    int(bool(entry.enabled)),
                    float(entry.timeout_seconds),
                    json.dumps(entry_extra(entry), sort_keys=True),
                ),
            )

    def save_served(self, sync_type: str, slot_offset: float) -> None:
        """Record the latest slot fired for ``sync_type`` (seconds after the epoch)."""
        with self._transaction("save_served") as conn:
            conn.execute(
                "INSERT INTO served (sync_type, slot_offset) VALUES (?, ?)"
                " ON CONFLICT (sync_type) DO UPDATE SET slot_offset = excluded.slot_offset",
                (sync_type, float(slot_offset)),
            )

    def append_run(self, record: RunRecord) -> None:
        """Add a finished run to the ledger.

        Raises:
            InvalidValueError: a time of the record is naive (times must be timezone-aware).
        """
        values = (
            record.sync_type,
            record.trigger,
            None if record.scheduled_at is None else _to_text(record.scheduled_at, "scheduledAt"),
            _to_text(record.requested_at, "requestedAt"),
            _to_text(record.started_at, "startedAt"),
            _to_text(record.finished_at, "finishedAt"),
            record.outcome,
            record.error,
        )
        with self._transaction("append_run") as conn:
            conn.execute(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)

    def runs(self, sync_type: str | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs newest first (by finish, then start, then insertion), of one type or all.

        Raises:
            InvalidValueError: ``limit`` is negative.
        """
        check_limit(limit)
        order = "ORDER BY finished_at DESC, started_at DESC, id DESC LIMIT ?"
        with self._transaction("runs", "DEFERRED") as conn:
            if sync_type is None:
                rows = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs {order}", (limit,)).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE sync_type = ? {order}", (sync_type, limit)
                ).fetchall()
        return [run_from_row(row) for row in rows]

    def prune(self, older_than: datetime) -> int:
        """Delete runs that finished before ``older_than``; return how many."""
        cutoff = _to_text(older_than, "olderThan")
        with self._transaction("prune") as conn:
            return conn.execute("DELETE FROM runs WHERE finished_at < ?", (cutoff,)).rowcount

    def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()

    # --- beyond the protocol (cluster) ---------------------------------------------

    def cluster(self) -> ClusterStore | None:
        """None: replicas share a PostgreSQL store, not an SQLite file."""
        return None

    def add_request(self, sync_type: str, trigger: str, requested_at: datetime) -> int:
        """Store an accepted manual request so a restart does not lose it; return its id."""
        text = _to_text(requested_at, "requestedAt")
        with self._transaction("add_request") as conn:
            cursor = conn.execute(
                "INSERT INTO requests (sync_type, trigger, requested_at) VALUES (?, ?, ?)",
                (sync_type, trigger, text),
            )
            return int(cursor.lastrowid or 0)

    def pending_requests(self) -> list[tuple[int, str, str, datetime]]:
        """Stored requests not started yet, oldest first: ``(id, sync_type, trigger, requested_at)``."""
        with self._transaction("pending_requests", "DEFERRED") as conn:
            rows = conn.execute(
                "SELECT id, sync_type, trigger, requested_at FROM requests ORDER BY requested_at, id"
            ).fetchall()
        return [(int(i), sync_type, trigger, stored_time(at)) for i, sync_type, trigger, at in rows]

    def delete_requests(self, ids: list[int]) -> None:
        """Forget requests whose runs have started."""
        if ids:
            with self._transaction("delete_requests") as conn:
                conn.executemany("DELETE FROM requests WHERE id = ?", [(int(i),) for i in ids])

    def claim_slot(self, sync_type: str, slot_offset: float) -> bool:
        """Claim slot ``slot_offset`` (seconds after the epoch) of ``sync_type`` for this caller.

        Slots are compared at millisecond resolution, so instances whose float arithmetic
        differs in the last bits still agree on a slot.

        Returns:
            True if this call claimed the slot, False if it was claimed before.

        Raises:
            InvalidValueError: ``slot_offset`` is not finite.
        """
        slot = slot_ms(slot_offset)
        claimed_at = datetime.now(UTC).isoformat(timespec="microseconds")
        with self._transaction("claim_slot") as conn:
            cursor = conn.execute(
                "INSERT INTO slot_claims (sync_type, slot_ms, claimed_at) VALUES (?, ?, ?)"
                " ON CONFLICT (sync_type, slot_ms) DO NOTHING",
                (sync_type, slot, claimed_at),
            )
            return cursor.rowcount == 1

    def prune_claims(self, older_than: datetime) -> int:
        """Forget slot claims made before ``older_than`` (wall time); return how many."""
        cutoff = _to_text(older_than, "olderThan")
        with self._transaction("prune_claims") as conn:
            return conn.execute("DELETE FROM slot_claims WHERE claimed_at < ?", (cutoff,)).rowcount

    # --- connection and schema -----------------------------------------------------

    @contextmanager
    def _transaction(
        self, what: str, mode: Literal["DEFERRED", "IMMEDIATE"] = "IMMEDIATE"
    ) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one transaction; turn every SQLite error into a ``StoreError``."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(f"BEGIN {mode}")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: {what} failed: {exc}") from exc

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
        if tables - {"sqlite_sequence"} and _VERSION_TABLE not in tables:
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
            apply_migrations(conn, _MIGRATIONS, placeholder="?", where=f"SQLite store {self.path}")
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise


def _to_text(moment: datetime, field: str) -> str:
    check_aware(moment, field)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
