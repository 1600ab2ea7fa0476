"""``PostgresStore``: the ``Store`` in a PostgreSQL schema (psycopg 3), shareable by a cluster.

The statements are ``SqlStore``'s. This module connects: one connection in autocommit
mode, used under a ``threading.Lock``. A dropped connection is replaced and the unit of
work run again, once; the statements are written so that a rerun after a commit whose
acknowledgement was lost does no harm (upserts, a per-call key on runs, requests and slot
claims). All tables live in one schema (``archibald`` by default), created and migrated on
first use under an advisory lock, so several instances may start at once. The
connection-string helpers are in ``pg_dsn``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from archibald_actors.cluster.channel import channel_name, encode_change
from archibald_actors.errors import InvalidValueError, StoreError
from archibald_actors.store.pg_dsn import describe, postgres_url
from archibald_actors.store.schema import POSTGRES_MIGRATIONS, VERSION_TABLE, apply_migrations
from archibald_actors.store.sql import Session, SqlStore

__all__ = ["PostgresStore", "postgres_url"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresStore(SqlStore):
    """The ``Store`` in PostgreSQL; several instances (a cluster's replicas) may share one schema.

    Args:
        dsn: a libpq connection string or URI.
        schema: the schema holding the tables (created if missing).
        connect_timeout: seconds to wait for a connection, unless ``dsn`` sets one.

    Raises:
        InvalidValueError: ``schema`` is not a PostgreSQL identifier, or ``dsn`` is not a
            valid connection string.
    """

    def __init__(self, dsn: str, schema: str = "archibald", *, connect_timeout: int = 10) -> None:
        if not schema or len(schema.encode()) > 63:
            raise InvalidValueError(
                "schema", f"must be a PostgreSQL identifier of 1 to 63 bytes, got {schema!r}"
            )
        self.dsn = dsn
        self.schema = schema
        self._where = describe(dsn, schema)
        super().__init__(_PostgresDialect(dsn, schema, connect_timeout, self._where))

    def __repr__(self) -> str:
        return f"PostgresStore({self._where})"

    def cluster(self) -> PostgresStore:
        """This store: every replica on its schema shares it."""
        return self

    def notify(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Announce a change to every replica listening on this schema (``ChangeListener``).

        Raises:
            InvalidValueError: ``payload`` is not JSON-serializable or too long for NOTIFY.
        """
        values = (channel_name(self.schema), encode_change(kind, payload))
        self._dialect.run("notify", lambda db: db.rows("SELECT pg_notify(?, ?)", values), write=True)


def _marks(query: str) -> str:
    """``query`` with psycopg's parameter marks: ``%s`` for ``?`` (and ``%%`` for a literal ``%``)."""
    return query.replace("%", "%%").replace("?", "%s")


class _PostgresSession:
    """``Session`` on a psycopg connection."""

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(_marks(query), params).fetchall()

    def count(self, query: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(_marks(query), params).rowcount

    def insert(self, query: str, params: Sequence[Any]) -> int:
        [(row_id,)] = self.rows(f"{query} RETURNING id", params)
        return int(row_id)


class _PostgresDialect:
    """How ``PostgresStore`` connects and runs a unit of work: autocommit, reconnect and retry once."""

    retries = True

    def __init__(self, dsn: str, schema: str, connect_timeout: int, where: str) -> None:
        self._dsn = dsn
        self._schema = schema
        self._connect_timeout = connect_timeout
        self._where = where
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._migrated = False

    def time(self, moment: datetime) -> datetime:
        """The ``datetime`` itself, for a ``timestamptz`` column (psycopg binds it natively)."""
        return moment

    def run(self, what: str, work: Callable[[Session], _T], *, write: bool) -> _T:
        """Run ``work`` under the lock, reconnecting and running it again once if the link drops.

        Each statement commits on its own (``write`` changes nothing here).

        Raises:
            StoreError: the work failed, or failed again after reconnecting.
        """
        with self._lock:
            try:
                return work(_PostgresSession(self._connection()))
            except psycopg.OperationalError as exc:
                log.warning("PostgreSQL store %s: %s failed (%s); reconnecting", self._where, what, exc)
                self._discard()
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL store {self._where}: {what} failed: {exc}") from exc
            try:
                return work(_PostgresSession(self._connection()))
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    self._discard()
                raise StoreError(
                    f"PostgreSQL store {self._where}: {what} failed after reconnecting: {exc}"
                ) from exc

    def close(self) -> None:
        """Close the connection (a later call connects again)."""
        with self._lock:
            self._discard()

    def _connection(self) -> _Connection:
        """The open connection, connecting and migrating first if needed."""
        if self._conn is None or self._conn.closed:
            params: dict[str, Any] = {"autocommit": True}
            if "connect_timeout" not in conninfo_to_dict(self._dsn):
                params["connect_timeout"] = self._connect_timeout
            conn = psycopg.connect(self._dsn, **params)
            try:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
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
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"archibald_actors:{self._schema}",))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
            tables = {
                name
                for (name,) in conn.execute(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                    (self._schema,),
                )
            }
            if tables and VERSION_TABLE not in tables:
                raise StoreError(
                    f"PostgreSQL store {self._where}: the schema holds tables of another program"
                    f" ({', '.join(sorted(tables))}); refusing to use it"
                )
            where = f"PostgreSQL store {self._where}"
            apply_migrations(_PostgresSession(conn), POSTGRES_MIGRATIONS, where=where)
