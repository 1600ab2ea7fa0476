"""``SqlStore``: the ``Store`` on an SQL database, one set of statements for SQLite and PostgreSQL.

Each statement is written once, with ``?`` marks, in the SQL both databases speak (an upsert
is ``INSERT ... ON CONFLICT ... DO UPDATE``); values are bound as ``codec`` makes them. A
``Dialect`` brings the rest: its connection, its parameter marks, how it binds a time, how
it runs a unit of work (lock, transaction, errors, reconnecting) and how it learns a new
row's id. The tables are in ``schema``.

The one place the statements differ: a PostgreSQL call runs a second time after a dropped
connection (``Dialect.retries``), not knowing whether its first try committed. There every
insert carries a per-call key (``run_key``, ``request_key``, a claim's ``token``), so the
second try finds the first one's row instead of adding another. SQLite runs each call once
and its tables have no such keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import uuid4

from archibald_actors.domain import RunRecord
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store.base import ClusterStore, StoredState
from archibald_actors.store.codec import (
    ENTRY_COLUMNS,
    RUN_COLUMNS,
    check_aware,
    check_limit,
    entry_from_row,
    entry_values,
    run_from_row,
    run_values,
    slot_ms,
    stored_time,
)

__all__ = ["Dialect", "Session", "SqlStore"]

_T = TypeVar("_T")

#: Every column but the key gets the new value on conflict.
_SAVE_ENTRY = (
    f"INSERT INTO schedule_entries ({ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (sync_type) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in ENTRY_COLUMNS.split(", ")[1:])
)
_RUN_MARKS = ", ".join("?" * len(RUN_COLUMNS.split(", ")))


class Session(Protocol):
    """The connection one unit of work runs on (inside ``Dialect.run``); queries use ``?`` marks."""

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``query``; return its rows."""
        ...

    def count(self, query: str, params: Sequence[Any] = ()) -> int:
        """Run ``query``; return how many rows it changed."""
        ...

    def insert(self, query: str, params: Sequence[Any]) -> int:
        """Run ``query``, an ``INSERT`` of one row into a table keyed by ``id``; return that id."""
        ...


class Dialect(Protocol):
    """What one database brings to ``SqlStore``.

    Attributes:
        retries: a unit of work may run twice (again after a dropped connection), so inserts
            must carry a per-call key.
    """

    retries: bool

    def time(self, moment: datetime) -> Any:
        """The parameter for ``moment`` (timezone-aware), sorting as the instant does."""
        ...

    def run(self, what: str, work: Callable[[Session], _T], *, write: bool) -> _T:
        """Run ``work`` under the dialect's lock (one unit at a time per store object).

        SQLite runs it in one transaction (``write`` takes the write lock at the start);
        PostgreSQL commits each statement on its own, so a unit of several statements must
        be correct that way (every unit here is: reads, and inserts that tolerate a rerun).

        Raises:
            StoreError: the database failed; the message names ``what`` and the store.
        """
        ...

    def close(self) -> None:
        """Close the connection (a later ``run`` opens it again)."""
        ...


class SqlStore:
    """The ``Store`` on a ``Dialect``: ``SqliteStore`` and ``PostgresStore`` are this with theirs.

    Every method raises ``StoreError`` when the database fails, and ``InvalidValueError`` for
    a naive datetime (times must be timezone-aware; the message names the field).
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect

    def load(self) -> StoredState:
        """Open (creating or migrating the tables) and read the state to start from."""

        def read(db: Session) -> StoredState:
            epoch = db.rows("SELECT epoch FROM epoch WHERE id = 1")
            served = db.rows("SELECT sync_type, slot_offset FROM served")
            return StoredState(
                epoch=stored_time(epoch[0][0]) if epoch else None,
                entries=_entries(db),
                served={sync_type: float(offset) for sync_type, offset in served},
            )

        return self._dialect.run("load", read, write=False)

    def load_entries(self) -> dict[str, ScheduleEntry]:
        """The schedule entries as last retuned, by type (one query: cheap on every change heard)."""
        return self._dialect.run("load_entries", _entries, write=False)

    def ensure_epoch(self, epoch: datetime) -> datetime:
        """Record ``epoch`` unless an epoch is stored already; return the stored one (UTC).

        The first writer wins across every process sharing the database: a later caller gets
        the epoch stored first, and its own argument is dropped.
        """
        value = self._time(epoch, "epoch")

        def ensure(db: Session) -> datetime:
            # The epoch is never changed once written, so the read finds the first writer's
            # (PostgreSQL's insert waits for a concurrent first writer to commit).
            db.count("INSERT INTO epoch (id, epoch) VALUES (1, ?) ON CONFLICT (id) DO NOTHING", (value,))
            [(stored,)] = db.rows("SELECT epoch FROM epoch WHERE id = 1")
            return stored_time(stored)

        return self._dialect.run("ensure_epoch", ensure, write=True)

    def save_entry(self, entry: ScheduleEntry) -> None:
        """Record a retune or pause (upsert by type); durable when this returns."""
        values = entry_values(entry)
        self._dialect.run("save_entry", lambda db: db.count(_SAVE_ENTRY, values), write=True)

    def save_served(self, sync_type: str, slot_offset: float) -> None:
        """Record the latest slot fired for ``sync_type`` (seconds after the epoch)."""
        query = (
            "INSERT INTO served (sync_type, slot_offset) VALUES (?, ?)"
            " ON CONFLICT (sync_type) DO UPDATE SET slot_offset = excluded.slot_offset"
        )
        values = (sync_type, float(slot_offset))
        self._dialect.run("save_served", lambda db: db.count(query, values), write=True)

    def append_run(self, record: RunRecord) -> None:
        """Add a finished run to the ledger (once, even where the call is retried)."""
        values = run_values(record, self._time)
        if self._dialect.retries:
            query = f"INSERT INTO runs (run_key, {RUN_COLUMNS}) VALUES (?, {_RUN_MARKS})"
            query += " ON CONFLICT (run_key) DO NOTHING"
            values = (uuid4(), *values)
        else:
            query = f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({_RUN_MARKS})"
        self._dialect.run("append_run", lambda db: db.count(query, values), write=True)

    def runs(self, sync_type: str | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs newest first (by finish, then start, then insertion), of one type or all.

        Raises:
            InvalidValueError: ``limit`` is negative.
        """
        check_limit(limit)
        where, params = ("", (limit,)) if sync_type is None else ("WHERE sync_type = ? ", (sync_type, limit))
        query = f"SELECT {RUN_COLUMNS} FROM runs {where}ORDER BY finished_at DESC, started_at DESC, id DESC"
        rows = self._dialect.run("runs", lambda db: db.rows(f"{query} LIMIT ?", params), write=False)
        return [run_from_row(row) for row in rows]

    def prune(self, older_than: datetime) -> int:
        """Delete runs that finished before ``older_than``; return how many."""
        cutoff = (self._time(older_than, "olderThan"),)
        query = "DELETE FROM runs WHERE finished_at < ?"
        return self._dialect.run("prune", lambda db: db.count(query, cutoff), write=True)

    def claim_slot(self, sync_type: str, slot_offset: float) -> bool:
        """Claim slot ``slot_offset`` (seconds after the epoch) of ``sync_type`` for this caller.

        Exactly one caller across every process sharing the database gets True for a slot.
        Slots are compared at millisecond resolution, so processes whose float arithmetic
        differs in the last bits still agree on a slot.

        Raises:
            InvalidValueError: ``slot_offset`` is not finite.
        """
        slot, token = slot_ms(slot_offset), None
        values: tuple[Any, ...] = (sync_type, slot, self._time(datetime.now(UTC), "claimedAt"))
        query = "INSERT INTO slot_claims (sync_type, slot_ms, claimed_at) VALUES (?, ?, ?)"
        if self._dialect.retries:
            token = uuid4()
            query = "INSERT INTO slot_claims (sync_type, slot_ms, claimed_at, token) VALUES (?, ?, ?, ?)"
            values = (*values, token)
        query += " ON CONFLICT (sync_type, slot_ms) DO NOTHING"

        def claim(db: Session) -> bool:
            if db.count(query, values) == 1:
                return True
            if token is None:
                return False
            # A retry after a lost acknowledgement finds its own claim: still ours.
            holder = "SELECT token FROM slot_claims WHERE sync_type = ? AND slot_ms = ?"
            return db.rows(holder, (sync_type, slot)) == [(token,)]

        return self._dialect.run("claim_slot", claim, write=True)

    def prune_claims(self, older_than: datetime) -> int:
        """Forget slot claims made before ``older_than`` (wall time); return how many."""
        cutoff = (self._time(older_than, "olderThan"),)
        query = "DELETE FROM slot_claims WHERE claimed_at < ?"
        return self._dialect.run("prune_claims", lambda db: db.count(query, cutoff), write=True)

    def add_request(self, sync_type: str, trigger: str, requested_at: datetime) -> int:
        """Store an accepted manual request so a restart or a new leader runs it; return its id.

        Every call adds a row (the orchestrator coalesces); a retried call adds none.
        """
        values: tuple[Any, ...] = (sync_type, trigger, self._time(requested_at, "requestedAt"))
        query = "INSERT INTO requests (sync_type, trigger, requested_at) VALUES (?, ?, ?)"
        if self._dialect.retries:
            # A conflict on the call's key is its own row from the first try: the no-op update
            # lets the insert report that row's id.
            query = "INSERT INTO requests (request_key, sync_type, trigger, requested_at) VALUES (?, ?, ?, ?)"
            query += " ON CONFLICT (request_key) DO UPDATE SET request_key = excluded.request_key"
            values = (uuid4(), *values)
        return self._dialect.run("add_request", lambda db: db.insert(query, values), write=True)

    def pending_requests(self) -> list[tuple[int, str, str, datetime]]:
        """Stored requests not started yet, oldest first: ``(id, sync_type, trigger, requested_at)``."""
        query = "SELECT id, sync_type, trigger, requested_at FROM requests ORDER BY requested_at, id"
        rows = self._dialect.run("pending_requests", lambda db: db.rows(query), write=False)
        return [(int(row), sync_type, trigger, stored_time(at)) for row, sync_type, trigger, at in rows]

    def delete_requests(self, ids: list[int]) -> None:
        """Forget requests whose runs have started; unknown ids are ignored."""
        values = [int(row) for row in ids]

        def delete(db: Session) -> None:
            for start in range(0, len(values), 500):  # SQLite before 3.32 takes 999 parameters at most
                chunk = values[start : start + 500]
                db.count(f"DELETE FROM requests WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

        if values:
            self._dialect.run("delete_requests", delete, write=True)

    def notify(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Announce a change to other replicas: none by default (``PostgresStore`` has them)."""

    def cluster(self) -> ClusterStore | None:
        """None by default: replicas share a ``PostgresStore``."""
        return None

    def close(self) -> None:
        """Release the connection (a later call opens it again); closing twice is harmless."""
        self._dialect.close()

    def _time(self, moment: datetime, field: str) -> Any:
        """``moment`` as a parameter; a naive one raises ``InvalidValueError`` naming ``field``."""
        return self._dialect.time(check_aware(moment, field))


def _entries(db: Session) -> dict[str, ScheduleEntry]:
    return {row[0]: entry_from_row(row) for row in db.rows(f"SELECT {ENTRY_COLUMNS} FROM schedule_entries")}
