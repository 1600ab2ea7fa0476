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

from archibald_actors.agent import Agent, check_agent_id
from archibald_actors.domain import RunRecord
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store.base import ClusterStore, PendingRequest, StoredState
from archibald_actors.store.codec import (
    AGENT_COLUMNS,
    ENTRY_COLUMNS,
    RUN_COLUMNS,
    agent_from_row,
    check_aware,
    check_limit,
    entry_from_row,
    entry_values,
    page_of_runs,
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

    #: A database may be slow or hang: its calls run on the store worker's thread.
    answers_at_once = False

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

    def runs(
        self,
        sync_type: str | None = None,
        limit: int = 100,
        *,
        agent_id: str | None = None,
        before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs newest first (by start, then insertion), at most ``limit``.

        Of one type or all, of one agent or all (None: no filter), and with ``before`` only
        runs that started strictly before it (to page back through the ledger).

        Raises:
            InvalidValueError: ``limit`` is negative, ``agent_id`` is not an agent id, or
                ``before`` is naive.
        """
        check_limit(limit)
        conditions: list[str] = []
        params: list[Any] = []
        if sync_type is not None:
            conditions.append("sync_type = ?")
            params.append(sync_type)
        if agent_id is not None:
            conditions.append("agent_id = ?")
            params.append(check_agent_id(agent_id))
        if before is not None:
            conditions.append("started_at < ?")
            params.append(self._time(before, "before"))
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        order = "ORDER BY started_at DESC, id DESC"
        query = f"SELECT {RUN_COLUMNS} FROM runs {where}{order} LIMIT ?"

        def newest(count: int) -> list[RunRecord]:
            rows = self._dialect.run("runs", lambda db: db.rows(query, (*params, count)), write=False)
            return [run_from_row(row) for row in rows]

        return page_of_runs(newest, limit)

    def prune(self, older_than: datetime) -> int:
        """Delete runs that finished before ``older_than``; return how many."""
        cutoff = (self._time(older_than, "olderThan"),)
        query = "DELETE FROM runs WHERE finished_at < ?"
        return self._dialect.run("prune", lambda db: db.count(query, cutoff), write=True)

    def claim_slot(self, sync_type: str, slot_offset: float, agent_id: str | None = None) -> bool:
        """Claim slot ``slot_offset`` (seconds after the epoch) of ``sync_type`` for this caller.

        Exactly one caller across every process sharing the database gets True for a slot
        of a type (``agent_id`` None) or of one agent's job of a per-agent type: each
        (type, agent, slot) is a key of its own. Slots are compared at millisecond
        resolution, so processes whose float arithmetic differs in the last bits still agree.

        Raises:
            InvalidValueError: ``slot_offset`` is not finite, or ``agent_id`` is not an agent id.
        """
        slot, token = slot_ms(slot_offset), None
        # A shared type's claims keep their table; an agent's job is keyed by its agent too.
        key: tuple[str, ...]
        if agent_id is None:
            table, key = "slot_claims", ("sync_type", "slot_ms")
            keys: tuple[Any, ...] = (sync_type, slot)
        else:
            table, key = "agent_claims", ("sync_type", "agent_id", "slot_ms")
            keys = (sync_type, check_agent_id(agent_id), slot)
        columns = [*key, "claimed_at"]
        values: tuple[Any, ...] = (*keys, self._time(datetime.now(UTC), "claimedAt"))
        if self._dialect.retries:
            token = uuid4()
            columns.append("token")
            values = (*values, token)
        query = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(values))})"
        query += f" ON CONFLICT ({', '.join(key)}) DO NOTHING"
        holder = f"SELECT token FROM {table} WHERE {' AND '.join(f'{column} = ?' for column in key)}"

        def claim(db: Session) -> bool:
            if db.count(query, values) == 1:
                return True
            if token is None:
                return False
            # A retry after a lost acknowledgement finds its own claim: still ours.
            return db.rows(holder, keys) == [(token,)]

        return self._dialect.run("claim_slot", claim, write=True)

    def prune_claims(self, older_than: datetime) -> int:
        """Forget slot claims made before ``older_than`` (wall time); return how many."""
        cutoff = (self._time(older_than, "olderThan"),)

        def prune(db: Session) -> int:
            shared = db.count("DELETE FROM slot_claims WHERE claimed_at < ?", cutoff)
            return shared + db.count("DELETE FROM agent_claims WHERE claimed_at < ?", cutoff)

        return self._dialect.run("prune_claims", prune, write=True)

    def add_request(
        self, sync_type: str, trigger: str, requested_at: datetime, agent_id: str | None = None
    ) -> int:
        """Store an accepted manual request so a restart or a new leader runs it; return its id.

        ``agent_id`` names the one agent it is for (None: a shared type, or every agent).
        Every call adds a row (the orchestrator coalesces); a retried call adds none.

        Raises:
            InvalidValueError: ``requested_at`` is naive, or ``agent_id`` is not an agent id.
        """
        agent = None if agent_id is None else check_agent_id(agent_id)
        values: tuple[Any, ...] = (sync_type, trigger, self._time(requested_at, "requestedAt"), agent)
        query = "INSERT INTO requests (sync_type, trigger, requested_at, agent_id) VALUES (?, ?, ?, ?)"
        if self._dialect.retries:
            # A conflict on the call's key is its own row from the first try: the no-op update
            # lets the insert report that row's id.
            query = (
                "INSERT INTO requests (request_key, sync_type, trigger, requested_at, agent_id)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (request_key) DO UPDATE SET request_key = excluded.request_key"
            )
            values = (uuid4(), *values)
        return self._dialect.run("add_request", lambda db: db.insert(query, values), write=True)

    def requests(self) -> list[PendingRequest]:
        """Stored requests not started yet, oldest first (by time, then id)."""
        query = "SELECT id, sync_type, trigger, requested_at, agent_id FROM requests"
        query += " ORDER BY requested_at, id"
        rows = self._dialect.run("requests", lambda db: db.rows(query), write=False)
        return [
            PendingRequest(int(row), sync_type, trigger, stored_time(at), agent)
            for row, sync_type, trigger, at, agent in rows
        ]

    def pending_requests(self) -> list[tuple[int, str, str, datetime]]:
        """``requests()`` as ``(id, sync_type, trigger, requested_at)``, without the agent."""
        return [(r.request_id, r.sync_type, r.trigger, r.requested_at) for r in self.requests()]

    def delete_requests(self, ids: list[int]) -> None:
        """Forget requests whose runs have started; unknown ids are ignored."""
        values = [int(row) for row in ids]

        def delete(db: Session) -> None:
            for start in range(0, len(values), 500):  # SQLite before 3.32 takes 999 parameters at most
                chunk = values[start : start + 500]
                db.count(f"DELETE FROM requests WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

        if values:
            self._dialect.run("delete_requests", delete, write=True)

    def put_agent(self, agent_id: str, name: str | None = None, enabled: bool = True) -> Agent:
        """Add the agent, or replace its name and flag; return it as stored.

        Raises:
            InvalidValueError: a bad ``agent_id``, ``name`` or ``enabled`` (the field is named).
        """
        agent = Agent(agent_id, name, enabled)
        query = (
            f"INSERT INTO agents ({AGENT_COLUMNS}) VALUES (?, ?, ?)"
            " ON CONFLICT (agent_id) DO UPDATE SET name = excluded.name, enabled = excluded.enabled"
        )
        values = (agent.agent_id, agent.name, agent.enabled)
        self._dialect.run("put_agent", lambda db: db.count(query, values), write=True)
        return agent

    def remove_agent(self, agent_id: str) -> bool:
        """Forget the agent and its pending requests (never its runs); return whether it existed.

        On PostgreSQL a call run again after a lost acknowledgement may answer False.

        Raises:
            InvalidValueError: ``agent_id`` is not an agent id.
        """
        key = (check_agent_id(agent_id),)

        def remove(db: Session) -> bool:
            db.count("DELETE FROM requests WHERE agent_id = ?", key)
            return db.count("DELETE FROM agents WHERE agent_id = ?", key) > 0

        return self._dialect.run("remove_agent", remove, write=True)

    def agents(self) -> list[Agent]:
        """Every agent, by id (code point order)."""
        query = f"SELECT {AGENT_COLUMNS} FROM agents ORDER BY agent_id"
        rows = self._dialect.run("agents", lambda db: db.rows(query), write=False)
        return [agent_from_row(row) for row in rows]

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
