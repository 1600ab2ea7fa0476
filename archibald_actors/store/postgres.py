"""``PostgresStore``: the ``Store`` in a PostgreSQL schema (psycopg 3), shareable by a cluster.

One connection in autocommit mode, used under a ``threading.Lock``; every operation is one
transaction. A dropped connection is replaced and the operation retried once; the
operations are written so that a retry after a commit whose acknowledgement was lost does
no harm (upserts, a per-call key on runs, a per-call token on slot claims).
All tables live in one schema (``archibald`` by default), created and migrated on first use
under an advisory lock, so several instances may start at once.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, LiteralString, TypeVar, cast
from uuid import uuid4

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from archibald_actors.errors import InvalidValueError, StoreError
from archibald_actors.ledger import RunRecord
from archibald_actors.messages import Outcome, Trigger
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store.base import StoredState

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Connection = psycopg.Connection[tuple[Any, ...]]

#: Marks a schema as ours and holds its version (one row).
_VERSION_TABLE = "archibald_schema"

#: Migrations by version: ``_MIGRATIONS[n]`` takes the schema from version n to n + 1.
#: Names are unqualified: the connection's ``search_path`` is the store's schema.
_MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        "CREATE TABLE epoch (id integer PRIMARY KEY CHECK (id = 1), epoch timestamptz NOT NULL)",
        """CREATE TABLE schedule_entries (
            sync_type text PRIMARY KEY,
            interval_minutes double precision NOT NULL,
            start_delay_minutes double precision NOT NULL,
            priority integer NOT NULL,
            enabled boolean NOT NULL,
            timeout_seconds double precision NOT NULL,
            extra jsonb NOT NULL DEFAULT '{}')""",
        "CREATE TABLE served (sync_type text PRIMARY KEY, slot_offset double precision NOT NULL)",
        """CREATE TABLE runs (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_key uuid NOT NULL UNIQUE,
            sync_type text NOT NULL,
            trigger text NOT NULL,
            scheduled_at timestamptz,
            requested_at timestamptz NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL,
            outcome text NOT NULL,
            error text)""",
        "CREATE INDEX runs_by_type ON runs (sync_type, finished_at DESC, started_at DESC, id DESC)",
        "CREATE INDEX runs_by_finish ON runs (finished_at, started_at, id)",
        """CREATE TABLE slot_claims (
            sync_type text NOT NULL,
            slot_ms bigint NOT NULL,
            token uuid NOT NULL,
            claimed_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (sync_type, slot_ms))""",
        "CREATE INDEX slot_claims_by_time ON slot_claims (claimed_at)",
    ),
)

#: The schema version this code writes and reads.
SCHEMA_VERSION = len(_MIGRATIONS)

_ENTRY_COLUMNS: LiteralString = (
    "sync_type, interval_minutes, start_delay_minutes, priority, enabled, timeout_seconds, extra"
)
#: ``ScheduleEntry`` fields with a column of their own; any other field goes to ``extra`` (JSON),
#: so a field added to ``ScheduleEntry`` later is kept without a migration.
_ENTRY_FIELDS = frozenset(_ENTRY_COLUMNS.replace(" ", "").split(",")) - {"extra"}
_RUN_COLUMNS: LiteralString = (
    "sync_type, trigger, scheduled_at, requested_at, started_at, finished_at, outcome, error"
)
_RUN_ORDER: LiteralString = "ORDER BY finished_at DESC, started_at DESC, id DESC LIMIT %s"


class PostgresStore:
    """The ``Store`` in PostgreSQL; several instances may share one schema.

    Args:
        dsn: a libpq connection string or URI.
        schema: the schema holding the tables (created if missing).
        connect_timeout: seconds to wait for a connection, unless ``dsn`` sets one.
    """

    def __init__(self, dsn: str, schema: str = "archibald", *, connect_timeout: int = 10) -> None:
        if not schema or len(schema.encode()) > 63:
            raise InvalidValueError(
                "schema", f"must be a PostgreSQL identifier of 1 to 63 bytes, got {schema!r}"
            )
        self.schema = schema
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._migrated = False
        self._where = _describe(dsn, schema)

    def __repr__(self) -> str:
        return f"PostgresStore({self._where})"

    # --- the Store protocol -------------------------------------------------------

    def load(self) -> StoredState:
        """Connect (creating or migrating the schema) and read the state to start from.

        Raises:
            StoreError: the server is unreachable, the schema belongs to something else or
                is of a newer version, or a query fails.
        """

        def load(conn: _Connection) -> StoredState:
            state = StoredState()
            with conn.transaction():
                row = conn.execute("SELECT epoch FROM epoch WHERE id = 1").fetchone()
                state.epoch = None if row is None else _utc(row[0])
                for row in conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM schedule_entries"):
                    state.entries[row[0]] = _entry_from_row(row)
                for sync_type, offset in conn.execute("SELECT sync_type, slot_offset FROM served"):
                    state.served[sync_type] = float(offset)
            return state

        return self._run("load", load)

    def save_epoch(self, epoch: datetime) -> None:
        """Record the epoch of the slot grid."""
        _check_aware(epoch, "epoch")
        self._execute(
            "save_epoch",
            "INSERT INTO epoch (id, epoch) VALUES (1, %s)"
            " ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch",
            (epoch,),
        )

    def save_entry(self, entry: ScheduleEntry) -> None:
        """Record a retune or pause (upsert by type); committed when this returns."""
        self._execute(
            "save_entry",
            f"INSERT INTO schedule_entries ({_ENTRY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (sync_type) DO UPDATE SET interval_minutes = EXCLUDED.interval_minutes,"
            " start_delay_minutes = EXCLUDED.start_delay_minutes, priority = EXCLUDED.priority,"
            " enabled = EXCLUDED.enabled, timeout_seconds = EXCLUDED.timeout_seconds,"
            " extra = EXCLUDED.extra",
            (
                entry.sync_type,
                float(entry.interval_minutes),
                float(entry.start_delay_minutes),
                int(entry.priority),
                bool(entry.enabled),
                float(entry.timeout_seconds),
                Jsonb(_entry_extra(entry)),
            ),
        )

    def save_served(self, sync_type: str, slot_offset: float) -> None:
        """Record the latest slot fired for ``sync_type`` (seconds after the epoch)."""
        self._execute(
            "save_served",
            "INSERT INTO served (sync_type, slot_offset) VALUES (%s, %s)"
            " ON CONFLICT (sync_type) DO UPDATE SET slot_offset = EXCLUDED.slot_offset",
            (sync_type, float(slot_offset)),
        )

    def append_run(self, record: RunRecord) -> None:
        """Add a finished run to the ledger (once, even if the call is retried internally).

        Raises:
            InvalidValueError: a time of the record is naive (times must be timezone-aware).
        """
        for field, moment in (
            ("scheduledAt", record.scheduled_at),
            ("requestedAt", record.requested_at),
            ("startedAt", record.started_at),
            ("finishedAt", record.finished_at),
        ):
            if moment is not None:
                _check_aware(moment, field)
        self._execute(
            "append_run",
            f"INSERT INTO runs (run_key, {_RUN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_key) DO NOTHING",
            (
                uuid4(),
                record.sync_type,
                record.trigger,
                record.scheduled_at,
                record.requested_at,
                record.started_at,
                record.finished_at,
                record.outcome,
                record.error,
            ),
        )

    def runs(self, sync_type: str | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs newest first (by finish, then start, then insertion), of one type or all.

        Raises:
            InvalidValueError: ``limit`` is negative.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidValueError("limit", f"must be a whole number >= 0, got {limit!r}")

        def select(conn: _Connection) -> list[tuple[Any, ...]]:
            if sync_type is None:
                return conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs {_RUN_ORDER}", (limit,)).fetchall()
            return conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE sync_type = %s {_RUN_ORDER}", (sync_type, limit)
            ).fetchall()

        return [_run_from_row(row) for row in self._run("runs", select)]

    def prune(self, older_than: datetime) -> int:
        """Delete runs that finished before ``older_than``; return how many."""
        _check_aware(older_than, "olderThan")
        return self._execute("prune", "DELETE FROM runs WHERE finished_at < %s", (older_than,))

    def close(self) -> None:
        """Close the connection (a later call connects again)."""
        with self._lock:
            self._discard()

    # --- beyond the protocol (cluster) ---------------------------------------------

    def claim_slot(self, sync_type: str, slot_offset: float) -> bool:
        """Claim slot ``slot_offset`` (seconds after the epoch) of ``sync_type`` for this caller.

        Exactly one caller across every instance sharing the schema gets True for a slot.
        Slots are compared at millisecond resolution, so instances whose float arithmetic
        differs in the last bits still agree on a slot.

        Returns:
            True if this call claimed the slot, False if it was claimed before.

        Raises:
            InvalidValueError: ``slot_offset`` is not finite.
        """
        if not math.isfinite(slot_offset):
            raise InvalidValueError("slotOffset", f"must be a finite number, got {slot_offset!r}")
        slot_ms = round(slot_offset * 1000)
        token = uuid4()

        def claim(conn: _Connection) -> bool:
            inserted = conn.execute(
                "INSERT INTO slot_claims (sync_type, slot_ms, token) VALUES (%s, %s, %s)"
                " ON CONFLICT (sync_type, slot_ms) DO NOTHING RETURNING token",
                (sync_type, slot_ms, token),
            ).fetchone()
            if inserted is not None:
                return True
            # A retry after a lost acknowledgement finds its own claim: still ours.
            holder = conn.execute(
                "SELECT token FROM slot_claims WHERE sync_type = %s AND slot_ms = %s", (sync_type, slot_ms)
            ).fetchone()
            return holder is not None and holder[0] == token

        return self._run("claim_slot", claim)

    def prune_claims(self, older_than: datetime) -> int:
        """Forget slot claims made before ``older_than`` (wall time); return how many."""
        _check_aware(older_than, "olderThan")
        return self._execute("prune_claims", "DELETE FROM slot_claims WHERE claimed_at < %s", (older_than,))

    # --- connection and schema -----------------------------------------------------

    def _execute(self, what: str, query: LiteralString, params: tuple[Any, ...]) -> int:
        """Run one statement in its own transaction; return the rows it touched."""
        return self._run(what, lambda conn: conn.execute(query, params).rowcount)

    def _run(self, what: str, operation: Callable[[_Connection], _T]) -> _T:
        """Run ``operation`` under the lock, reconnecting and retrying once if the link drops.

        Raises:
            StoreError: the operation failed, or failed again after reconnecting.
        """
        with self._lock:
            try:
                return operation(self._connection())
            except psycopg.OperationalError as exc:
                log.warning("PostgreSQL store %s: %s failed (%s); reconnecting", self._where, what, exc)
                self._discard()
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL store {self._where}: {what} failed: {exc}") from exc
            try:
                return operation(self._connection())
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    self._discard()
                raise StoreError(
                    f"PostgreSQL store {self._where}: {what} failed after reconnecting: {exc}"
                ) from exc

    def _connection(self) -> _Connection:
        """The open connection, connecting and migrating first if needed."""
        if self._conn is None or self._conn.closed:
            params: dict[str, Any] = {"autocommit": True}
            if "connect_timeout" not in conninfo_to_dict(self._dsn):
                params["connect_timeout"] = self._connect_timeout
            conn = psycopg.connect(self._dsn, **params)
            try:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                if not self._migrated:
                    self._migrate(conn)
                    self._migrated = True
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                log.debug("PostgreSQL store %s: error closing a broken connection", self._where)

    def _migrate(self, conn: _Connection) -> None:
        """Create the schema or bring it up to date; refuse one that is not ours or is newer."""
        with conn.transaction():
            # Serializes instances starting together (the lock ends with the transaction).
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"archibald_actors:{self.schema}",))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            tables = {
                name
                for (name,) in conn.execute(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                    (self.schema,),
                )
            }
            if tables and _VERSION_TABLE not in tables:
                raise StoreError(
                    f"PostgreSQL store {self._where}: the schema holds tables of another program"
                    f" ({', '.join(sorted(tables))}); refusing to use it"
                )
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_VERSION_TABLE} (version integer NOT NULL)")
            row = conn.execute(f"SELECT version FROM {_VERSION_TABLE}").fetchone()
            if row is None:
                conn.execute(f"INSERT INTO {_VERSION_TABLE} (version) VALUES (0)")
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"PostgreSQL store {self._where} has schema version {version}, newer than this"
                    f" program's {SCHEMA_VERSION}; upgrade the program"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[number]:
                    conn.execute(statement)
                log.info("PostgreSQL store %s: migrated to schema version %d", self._where, number + 1)
            conn.execute(f"UPDATE {_VERSION_TABLE} SET version = %s", (max(version, SCHEMA_VERSION),))


def _describe(dsn: str, schema: str) -> str:
    """Where the store lives, for messages: host, port, database and schema, never the password."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise InvalidValueError("dsn", f"is not a valid connection string: {exc}") from exc
    parts = [f"{key}={info[key]}" for key in ("host", "port", "dbname", "user") if info.get(key)]
    return " ".join([*parts, f"schema={schema}"])


def _check_aware(moment: datetime, field: str) -> None:
    if moment.utcoffset() is None:
        raise InvalidValueError(field, f"must be a timezone-aware datetime, got {moment!r}")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _entry_extra(entry: ScheduleEntry) -> dict[str, Any]:
    return {f.name: getattr(entry, f.name) for f in fields(entry) if f.name not in _ENTRY_FIELDS}


def _entry_from_row(row: tuple[Any, ...]) -> ScheduleEntry:
    sync_type, interval, delay, priority, enabled, timeout, extra = row
    known = {f.name for f in fields(ScheduleEntry)}  # a field since removed is dropped
    more = {name: value for name, value in extra.items() if name in known}
    return ScheduleEntry(
        sync_type, float(interval), float(delay), int(priority), bool(enabled), float(timeout), **more
    )


def _run_from_row(row: tuple[Any, ...]) -> RunRecord:
    sync_type, trigger, scheduled_at, requested_at, started_at, finished_at, outcome, error = row
    return RunRecord(
        sync_type=sync_type,
        trigger=cast(Trigger, trigger),
        scheduled_at=None if scheduled_at is None else _utc(scheduled_at),
        requested_at=_utc(requested_at),
        started_at=_utc(started_at),
        finished_at=_utc(finished_at),
        outcome=cast(Outcome, outcome),
        error=error,
    )
