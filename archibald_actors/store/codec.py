"""Rows to values and back, shared by the SQL stores (``SqliteStore``, ``PostgresStore``).

Both keep the same tables; they differ only in how a time or a JSON column comes back
(SQLite: ISO 8601 text and JSON text; PostgreSQL: ``datetime`` and a decoded ``jsonb``),
which the readers here accept either way.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, LiteralString, cast

from archibald_actors.domain import Outcome, RunRecord, Trigger
from archibald_actors.errors import InvalidValueError, StoreError
from archibald_actors.schedule import ScheduleEntry

__all__ = [
    "ENTRY_COLUMNS",
    "VERSION_TABLE",
    "apply_migrations",
    "ENTRY_FIELDS",
    "RUN_COLUMNS",
    "check_aware",
    "check_limit",
    "entry_extra",
    "entry_from_row",
    "run_from_row",
    "slot_ms",
    "stored_time",
]

log = logging.getLogger("archibald_actors.store")

#: The table holding the schema version both SQL stores migrate by.
VERSION_TABLE = "archibald_schema"

#: Columns of ``schedule_entries``, in the order ``entry_from_row`` reads them.
ENTRY_COLUMNS: LiteralString = (
    "sync_type, interval_minutes, start_delay_minutes, priority, enabled, timeout_seconds, extra"
)
#: ``ScheduleEntry`` fields with a column of their own; any other field goes to ``extra`` (JSON),
#: so a field added to ``ScheduleEntry`` later is kept without a migration.
ENTRY_FIELDS = frozenset(ENTRY_COLUMNS.replace(" ", "").split(",")) - {"extra"}
#: Columns of ``runs``, in the order ``run_from_row`` reads them.
RUN_COLUMNS: LiteralString = (
    "sync_type, trigger, scheduled_at, requested_at, started_at, finished_at, outcome, error"
)


def check_aware(moment: datetime, field: str) -> None:
    """Refuse a naive datetime.

    Raises:
        InvalidValueError: ``moment`` has no timezone; the message names ``field``.
    """
    if moment.utcoffset() is None:
        raise InvalidValueError(field, f"must be a timezone-aware datetime, got {moment!r}")


def check_limit(limit: int) -> None:
    """Refuse a limit that is not a whole number >= 0.

    Raises:
        InvalidValueError: it is negative, a bool or not an int.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidValueError("limit", f"must be a whole number >= 0, got {limit!r}")


def slot_ms(slot_offset: float) -> int:
    """The key of a slot: its offset from the epoch in whole milliseconds.

    Raises:
        InvalidValueError: ``slot_offset`` is not finite.
    """
    if not math.isfinite(slot_offset):
        raise InvalidValueError("slotOffset", f"must be a finite number, got {slot_offset!r}")
    return round(slot_offset * 1000)


def stored_time(value: str | datetime) -> datetime:
    """A stored time (ISO 8601 text or a ``datetime``) as an aware UTC ``datetime``."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC)


def entry_extra(entry: ScheduleEntry) -> dict[str, Any]:
    """The fields of ``entry`` without a column of their own (stored as JSON in ``extra``)."""
    return {f.name: getattr(entry, f.name) for f in fields(entry) if f.name not in ENTRY_FIELDS}


def entry_from_row(row: tuple[Any, ...]) -> ScheduleEntry:
    """A ``ScheduleEntry`` from a row of ``ENTRY_COLUMNS`` (``extra`` as JSON text or a mapping)."""
    sync_type, interval, delay, priority, enabled, timeout, extra = row
    if isinstance(extra, str):
        extra = json.loads(extra)
    known = {f.name for f in fields(ScheduleEntry)}  # a field since removed is dropped
    more = {name: value for name, value in extra.items() if name in known}
    return ScheduleEntry(
        sync_type, float(interval), float(delay), int(priority), bool(enabled), float(timeout), **more
    )


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    """A ``RunRecord`` from a row of ``RUN_COLUMNS``."""
    sync_type, trigger, scheduled_at, requested_at, started_at, finished_at, outcome, error = row
    return RunRecord(
        sync_type=sync_type,
        trigger=cast(Trigger, trigger),
        scheduled_at=None if scheduled_at is None else stored_time(scheduled_at),
        requested_at=stored_time(requested_at),
        started_at=stored_time(started_at),
        finished_at=stored_time(finished_at),
        outcome=cast(Outcome, outcome),
        error=error,
    )


def apply_migrations(
    conn: Any, migrations: tuple[tuple[str, ...], ...], *, placeholder: str, where: str
) -> None:
    """Bring the schema behind ``conn`` to ``len(migrations)``, inside the caller's transaction.

    ``migrations[n]`` takes the schema from version n to n + 1. ``conn`` is a sqlite3 or
    psycopg connection (both have ``execute(...).fetchone()``); ``placeholder`` is its
    parameter mark. A schema newer than this program is refused, never downgraded.

    Raises:
        StoreError: the stored version is newer than this program knows.
    """
    latest = len(migrations)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
    row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
    if row is None:
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (0)")
    version = 0 if row is None else int(row[0])
    if version > latest:
        raise StoreError(
            f"{where} has schema version {version}, newer than this program's {latest}; upgrade the program"
        )
    for number in range(version, latest):
        for statement in migrations[number]:
            conn.execute(statement)
        log.info("%s: migrated to schema version %d", where, number + 1)
    conn.execute(f"UPDATE {VERSION_TABLE} SET version = {placeholder}", (max(version, latest),))
