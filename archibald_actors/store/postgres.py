"""``PostgresStore``: the ``Store`` in a PostgreSQL schema (psycopg 3), shareable by a cluster.

One connection in autocommit mode, used under a ``threading.Lock``; every operation is one
transaction. A dropped connection is replaced and the operation retried once; the
operations are written so that a retry after a commit whose acknowledgement was lost does
no harm (upserts, a per-call key on runs and requests, a per-call token on slot claims).
All tables live in one schema (``archibald`` by default), created and migrated on first use
under an advisory lock, so several instances may start at once.
The tables are defined in ``pg_schema``, the connection-string helpers in ``pg_dsn``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, LiteralString, TypeVar
from uuid import uuid4

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from archibald_actors.cluster.channel import channel_name, encode_change
from archibald_actors.domain import RunRecord
from archibald_actors.errors import InvalidValueError, StoreError
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store.base import StoredState
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
from archibald_actors.store.pg_dsn import describe, postgres_url
from archibald_actors.store.pg_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "PostgresStore", "postgres_url"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Connection = psycopg.Connection[tuple[Any, ...]]

#: Marks a schema as ours and holds its version (one row).
_VERSION_TABLE = VERSION_TABLE

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
        self.dsn = dsn
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._migrated = False
        self._where = describe(dsn, schema)

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
                state.epoch = None if row is None else stored_time(row[0])
                for row in conn.execute(f"SELECT {ENTRY_COLUMNS} FROM schedule_entries"):
                    state.entries[row[0]] = entry_from_row(row)
                for sync_type, offset in conn.execute("SELECT sync_type, slot_offset FROM served"):
                    state.served[sync_type] = float(offset)
            return state

        return self._run("load", load)

    def save_epoch(self, epoch: datetime) -> None:
        """Record the epoch of the slot grid."""
        check_aware(epoch, "epoch")
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
            f"INSERT INTO schedule_entries ({ENTRY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
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
                Jsonb(entry_extra(entry)),
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
                check_aware(moment, field)
        self._execute(
            "append_run",
            f"INSERT INTO runs (run_key, {RUN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
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
        check_limit(limit)

        if sync_type is None:
            rows = self._fetch("runs", f"SELECT {RUN_COLUMNS} FROM runs {_RUN_ORDER}", (limit,))
        else:
            query: LiteralString = f"SELECT {RUN_COLUMNS} FROM runs WHERE sync_type = %s {_RUN_ORDER}"
            rows = self._fetch("runs", query, (sync_type, limit))
        return [run_from_row(row) for row in rows]

    def prune(self, older_than: datetime) -> int:
        """Delete runs that finished before ``older_than``; return how many."""
        check_aware(older_than, "olderThan")
        return self._execute("prune", "DELETE FROM runs WHERE finished_at < %s", (older_than,))

    def close(self) -> None:
        """Close the connection (a later call connects again)."""
        with self._lock:
            self._discard()

    # --- beyond the protocol (cluster) ---------------------------------------------

    def cluster(self) -> PostgresStore:
        """This store: every replica on its schema shares it."""
        return self

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
        slot = slot_ms(slot_offset)
        token = uuid4()

        def claim(conn: _Connection) -> bool:
            inserted = conn.execute(
                "INSERT INTO slot_claims (sync_type, slot_ms, token) VALUES (%s, %s, %s)"
                " ON CONFLICT (sync_type, slot_ms) DO NOTHING RETURNING token",
                (sync_type, slot, token),
            ).fetchone()
            if inserted is not None:
                return True
            # A retry after a lost acknowledgement finds its own claim: still ours.
            holder = conn.execute(
                "SELECT token FROM slot_claims WHERE sync_type = %s AND slot_ms = %s", (sync_type, slot)
            ).fetchone()
            return holder is not None and holder[0] == token

        return self._run("claim_slot", claim)

    def prune_claims(self, older_than: datetime) -> int:
        """Forget slot claims made before ``older_than`` (wall time); return how many."""
        check_aware(older_than, "olderThan")
        return self._execute("prune_claims", "DELETE FROM slot_claims WHERE claimed_at < %s", (older_than,))

    def ensure_epoch(self, epoch: datetime) -> datetime:
        """Record ``epoch`` unless an epoch is stored already; return the stored one (UTC).

        The first writer wins across every instance sharing the schema: replicas starting
        together all get the same epoch, whichever came first.

        Raises:
            InvalidValueError: ``epoch`` is naive.
        """
        check_aware(epoch, "epoch")
        # On conflict the no-op update waits for a concurrent first writer to commit, then
        # returns its epoch: one statement, no window between writing and reading.
        query: LiteralString = (
            "INSERT INTO epoch (id, epoch) VALUES (1, %s)"
            " ON CONFLICT (id) DO UPDATE SET epoch = epoch.epoch RETURNING epoch"
        )
        [(stored,)] = self._fetch("ensure_epoch", query, (epoch,))
        return stored_time(stored)

    def load_entries(self) -> dict[str, ScheduleEntry]:
        """The schedule entries as last retuned, by type (one query: cheap on every notification)."""
        rows = self._fetch("load_entries", f"SELECT {ENTRY_COLUMNS} FROM schedule_entries")
        return {row[0]: entry_from_row(row) for row in rows}

    def add_request(self, sync_type: str, trigger: str, requested_at: datetime) -> int:
        """Store a request to run ``sync_type`` so it survives a change of leader; return its id.

        Every call adds a row (the orchestrator coalesces); an internal retry adds none.

        Raises:
            InvalidValueError: ``requested_at`` is naive.
        """
        check_aware(requested_at, "requestedAt")
        # A conflict on the per-call key is our own row from before the retry: return its id.
        query: LiteralString = (
            "INSERT INTO requests (request_key, sync_type, trigger, requested_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (request_key) DO UPDATE SET request_key = EXCLUDED.request_key RETURNING id"
        )
        [(request_id,)] = self._fetch("add_request", query, (uuid4(), sync_type, trigger, requested_at))
        return int(request_id)

    def pending_requests(self) -> list[tuple[int, str, str, datetime]]:
        """Stored requests, oldest first: ``(id, sync_type, trigger, requested_at)``."""
        query: LiteralString = "SELECT id, sync_type, trigger, requested_at FROM requests"
        rows = self._fetch("pending_requests", f"{query} ORDER BY requested_at, id")
        return [(int(id_), sync_type, trigger, stored_time(at)) for id_, sync_type, trigger, at in rows]

    def delete_requests(self, ids: list[int]) -> None:
        """Forget the requests ``ids`` (taken over by the orchestrator); unknown ids are ignored."""
        if ids:
            self._execute("delete_requests", "DELETE FROM requests WHERE id = ANY(%s)", ([*map(int, ids)],))

    def notify(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Announce a change to every replica listening on this schema (``ChangeListener``).

        Raises:
            InvalidValueError: ``payload`` is not JSON-serializable or too long for NOTIFY.
        """
        message = encode_change(kind, payload)
        self._execute("notify", "SELECT pg_notify(%s, %s)", (channel_name(self.schema), message))

    # --- connection and schema -----------------------------------------------------

    def _execute(self, what: str, query: LiteralString, params: tuple[Any, ...]) -> int:
        """Run one statement in its own transaction; return the rows it touched."""
        return self._run(what, lambda conn: conn.execute(query, params).rowcount)

    def _fetch(self, what: str, query: LiteralString, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one query in its own transaction; return its rows."""
        return self._run(what, lambda conn: conn.execute(query, params).fetchall())

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
            apply_migrations(conn, MIGRATIONS, placeholder="%s", where=f"PostgreSQL store {self._where}")
