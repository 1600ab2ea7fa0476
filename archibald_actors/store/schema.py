"""The tables of the SQL stores: each dialect's DDL by schema version, and the migration runner.

The statements that read and write (``sql``) are shared; the DDL is not, because the
tables differ where the databases do: column types (ISO text vs ``timestamptz``, text vs
``jsonb``), how ids are generated, and the per-call keys only PostgreSQL needs (its calls
may run twice, see ``sql``). A version means the same tables in both dialects, and the
statements of a released version are never edited: files and schemas they created must
keep opening. A change of tables is a new entry in both lists.
"""

from __future__ import annotations

import logging

from archibald_actors.errors import StoreError
from archibald_actors.store.sql import Session

__all__ = ["POSTGRES_MIGRATIONS", "SCHEMA_VERSION", "SQLITE_MIGRATIONS", "VERSION_TABLE", "apply_migrations"]

log = logging.getLogger("archibald_actors.store")

#: Marks a database (SQLite) or schema (PostgreSQL) as ours and holds its version (one row).
VERSION_TABLE = "archibald_schema"

#: ``SQLITE_MIGRATIONS[n]`` takes an SQLite file from schema version n to n + 1.
SQLITE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
    (
        # Agents (per-agent syncs): the agents themselves, who a run and a request are for,
        # and a run's try, result and skip reason. Rows written before read as a shared
        # type's first try. Per-agent slot claims get a table of their own, so a shared
        # type's claim stays exactly what it was.
        "ALTER TABLE runs ADD COLUMN agent_id TEXT",
        "ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE runs ADD COLUMN result TEXT",
        "ALTER TABLE runs ADD COLUMN reason TEXT",
        "CREATE INDEX runs_by_agent ON runs (agent_id, finished_at DESC, started_at DESC, id DESC)",
        "ALTER TABLE requests ADD COLUMN agent_id TEXT",
        """CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY,
            name TEXT,
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)))""",
        """CREATE TABLE agent_claims (
            sync_type TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            slot_ms INTEGER NOT NULL,
            claimed_at TEXT NOT NULL,
            UNIQUE (sync_type, agent_id, slot_ms))""",
        "CREATE INDEX agent_claims_by_time ON agent_claims (claimed_at)",
    ),
    (
        # History is newest first by start, the order a reader pages back in (``before`` is
        # a start): the indexes follow. Prune still goes by finish (``runs_by_finish``).
        "DROP INDEX runs_by_type",
        "DROP INDEX runs_by_agent",
        "CREATE INDEX runs_by_type ON runs (sync_type, started_at DESC, id DESC)",
        "CREATE INDEX runs_by_agent ON runs (agent_id, started_at DESC, id DESC)",
        "CREATE INDEX runs_by_start ON runs (started_at DESC, id DESC)",
    ),
)

#: ``POSTGRES_MIGRATIONS[n]`` takes a PostgreSQL schema from version n to n + 1. Names are
#: unqualified: the connection's ``search_path`` is the store's schema.
POSTGRES_MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
    (
        # Manual requests outlive the leader that was to run them (cluster failover).
        """CREATE TABLE requests (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_key uuid NOT NULL UNIQUE,
            sync_type text NOT NULL,
            trigger text NOT NULL,
            requested_at timestamptz NOT NULL)""",
        "CREATE INDEX requests_by_time ON requests (requested_at, id)",
    ),
    (
        # As SQLite's version 3. Adding a column with a constant default rewrites no rows.
        "ALTER TABLE runs ADD COLUMN agent_id text",
        "ALTER TABLE runs ADD COLUMN attempt integer NOT NULL DEFAULT 1",
        "ALTER TABLE runs ADD COLUMN result jsonb",
        "ALTER TABLE runs ADD COLUMN reason text",
        "CREATE INDEX runs_by_agent ON runs (agent_id, finished_at DESC, started_at DESC, id DESC)",
        "ALTER TABLE requests ADD COLUMN agent_id text",
        # "C": agents() lists ids in code point order, as SQLite and Python sort them.
        """CREATE TABLE agents (
            agent_id text COLLATE "C" PRIMARY KEY,
            name text,
            enabled boolean NOT NULL)""",
        # Unique per (type, agent, slot) across every replica sharing the schema.
        """CREATE TABLE agent_claims (
            sync_type text NOT NULL,
            agent_id text NOT NULL,
            slot_ms bigint NOT NULL,
            token uuid NOT NULL,
            claimed_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (sync_type, agent_id, slot_ms))""",
        "CREATE INDEX agent_claims_by_time ON agent_claims (claimed_at)",
    ),
    (
        # As SQLite's version 4.
        "DROP INDEX runs_by_type",
        "DROP INDEX runs_by_agent",
        "CREATE INDEX runs_by_type ON runs (sync_type, started_at DESC, id DESC)",
        "CREATE INDEX runs_by_agent ON runs (agent_id, started_at DESC, id DESC)",
        "CREATE INDEX runs_by_start ON runs (started_at DESC, id DESC)",
    ),
)

#: The schema version this code writes and reads, in both dialects.
SCHEMA_VERSION = len(SQLITE_MIGRATIONS)


def apply_migrations(db: Session, migrations: tuple[tuple[str, ...], ...], *, where: str) -> None:
    """Bring the tables behind ``db`` to ``len(migrations)``, inside the caller's transaction.

    A schema newer than this program is refused, never downgraded.

    Raises:
        StoreError: the stored version is newer than this program knows; the message names ``where``.
    """
    latest = len(migrations)
    db.count(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
    rows = db.rows(f"SELECT version FROM {VERSION_TABLE}")
    if not rows:
        db.count(f"INSERT INTO {VERSION_TABLE} (version) VALUES (0)")
    version = int(rows[0][0]) if rows else 0
    if version > latest:
        raise StoreError(
            f"{where} has schema version {version}, newer than this program's {latest}; upgrade the program"
        )
    for number in range(version, latest):
        for statement in migrations[number]:
            db.count(statement)
        log.info("%s: migrated to schema version %d", where, number + 1)
    db.count(f"UPDATE {VERSION_TABLE} SET version = ?", (max(version, latest),))
