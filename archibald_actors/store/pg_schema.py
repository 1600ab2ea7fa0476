"""The tables of ``PostgresStore``: the DDL of each schema migration and ``SCHEMA_VERSION``.

The same tables as ``SqliteStore`` keeps (``codec`` reads their rows for both), in
PostgreSQL types; ``codec.apply_migrations`` runs the statements.
"""

from __future__ import annotations

from typing import LiteralString

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

#: Migrations by version: ``MIGRATIONS[n]`` takes the schema from version n to n + 1.
#: Names are unqualified: the connection's ``search_path`` is the store's schema.
MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
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
)

#: The schema version this code writes and reads.
SCHEMA_VERSION = len(MIGRATIONS)
