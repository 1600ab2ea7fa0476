"""A store written by schema version 2 (before agents) opens, migrates and reads back with defaults.

The version-2 tables are made with the released statements themselves, and filled with
the columns that version had, as the previous release left them.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from pg_server import PG_DSN
from psycopg import sql

from archibald_actors.agent import Agent
from archibald_actors.domain import RunRecord
from archibald_actors.store import PostgresStore, SqliteStore
from archibald_actors.store.base import PendingRequest
from archibald_actors.store.schema import (
    POSTGRES_MIGRATIONS,
    SCHEMA_VERSION,
    SQLITE_MIGRATIONS,
    VERSION_TABLE,
)
from archibald_actors.store.sql import SqlStore

from .support import T0

#: Rows as version 2 wrote them (its columns only); PostgreSQL's carry its per-call keys.
_OLD_ROWS = {
    "sqlite": (
        "INSERT INTO runs (sync_type, trigger, scheduled_at, requested_at, started_at, finished_at,"
        " outcome, error) VALUES ('orders', 'auto', ?, ?, ?, ?, 'failed', 'ERP down')",
        "INSERT INTO requests (sync_type, trigger, requested_at) VALUES ('prices', 'manual', ?)",
        "INSERT INTO slot_claims (sync_type, slot_ms, claimed_at) VALUES ('orders', 600000, ?)",
    ),
    "postgres": (
        "INSERT INTO runs (run_key, sync_type, trigger, scheduled_at, requested_at, started_at, finished_at,"
        " outcome, error) VALUES (gen_random_uuid(), 'orders', 'auto', %s, %s, %s, %s, 'failed', 'ERP down')",
        "INSERT INTO requests (request_key, sync_type, trigger, requested_at)"
        " VALUES (gen_random_uuid(), 'prices', 'manual', %s)",
        "INSERT INTO slot_claims (sync_type, slot_ms, claimed_at, token)"
        " VALUES ('orders', 600000, %s, gen_random_uuid())",
    ),
}


def _old_times() -> tuple[datetime, ...]:
    started = T0 + timedelta(seconds=30)
    return (T0, T0 + timedelta(seconds=1), started, started + timedelta(seconds=45))


def _expected_old_run() -> RunRecord:
    scheduled, requested, started, finished = _old_times()
    return RunRecord("orders", "auto", scheduled, requested, started, finished, "failed", "ERP down")


def _check_migrated(store: SqlStore) -> None:
    """What the new code reads from the old rows, and that the new tables work beside them."""
    store.load()
    [old] = store.runs()
    assert old == _expected_old_run()
    assert (old.agent_id, old.attempt, old.result, old.reason) == (None, 1, None, None)
    assert old.to_json()["agentId"] is None and old.to_json()["attempt"] == 1
    [request] = store.requests()
    assert request == PendingRequest(request.request_id, "prices", "manual", T0, None)
    assert store.claim_slot("orders", 600.0) is False  # the old claim still holds
    assert store.claim_slot("orders", 600.0, "mario") is True
    assert store.agents() == []
    assert store.put_agent("mario", "Mario") == Agent("mario", "Mario")
    started = T0 + timedelta(minutes=5)
    new = RunRecord(
        "orders", "retry", None, T0, started, started + timedelta(seconds=1), "skipped",
        agent_id="mario", attempt=2, result={"rows": 0}, reason="needs login",
    )
    store.append_run(new)
    assert store.runs() == [new, old]
    assert store.runs(agent_id="mario") == [new]


def test_a_version_2_sqlite_file_migrates(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as conn:
        for statement in (*SQLITE_MIGRATIONS[0], *SQLITE_MIGRATIONS[1]):
            conn.execute(statement)
        conn.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (2)")
        run, request, claim = _OLD_ROWS["sqlite"]
        text = [t.isoformat(timespec="microseconds") for t in _old_times()]
        conn.execute(run, text)
        conn.execute(request, (text[0],))
        conn.execute(claim, (datetime.now(UTC).isoformat(timespec="microseconds"),))
    conn.close()
    store = SqliteStore(path)
    try:
        _check_migrated(store)
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    reopened = SqliteStore(path)  # and opens again at the new version without migrating twice
    try:
        assert [r.agent_id for r in reopened.runs()] == ["mario", None]
    finally:
        reopened.close()


def test_a_version_2_postgres_schema_migrates(pg_schema: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg_schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        for statement in (*POSTGRES_MIGRATIONS[0], *POSTGRES_MIGRATIONS[1]):
            conn.execute(statement)
        conn.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (2)")
        run, request, claim = _OLD_ROWS["postgres"]
        conn.execute(run, _old_times())
        conn.execute(request, (T0,))
        conn.execute(claim, (datetime.now(UTC),))
    store = PostgresStore(PG_DSN, schema=pg_schema)
    try:
        _check_migrated(store)
    finally:
        store.close()
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        table = sql.Identifier(pg_schema, VERSION_TABLE)
        version = conn.execute(sql.SQL("SELECT version FROM {}").format(table)).fetchall()
    assert version == [(SCHEMA_VERSION,)]

