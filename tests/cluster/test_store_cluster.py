"""The store methods a cluster needs: durable manual requests, a shared epoch, cheap reloads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
from pg_server import PG_DSN
from psycopg import sql

from archibald_actors.errors import InvalidValueError
from archibald_actors.schedule import DEFAULT_SCHEDULE
from archibald_actors.store import PostgresStore, SqliteStore
from archibald_actors.store.schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION

from .support import WAIT

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
Admin = psycopg.Connection[tuple[Any, ...]]


class EpochStore(Protocol):
    """What the epoch tests need of a store."""

    def ensure_epoch(self, epoch: datetime) -> datetime: ...
    def close(self) -> None: ...


@pytest.fixture
def open_pg(schema: str) -> Iterator[Callable[[], PostgresStore]]:
    """Open ``PostgresStore`` objects on the test's schema; all are closed afterwards."""
    opened: list[PostgresStore] = []

    def open_store() -> PostgresStore:
        opened.append(PostgresStore(PG_DSN, schema=schema))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def open_durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], EpochStore]]:
    """Open stores of one durable backend on one file or schema; all are closed afterwards."""
    opened: list[EpochStore] = []

    def open_store() -> EpochStore:
        store: EpochStore
        if request.param == "sqlite":
            store = SqliteStore(tmp_path / "state.db")
        else:
            store = PostgresStore(PG_DSN, schema=request.getfixturevalue("schema"))
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


# --- requests -----------------------------------------------------------------------


def test_requests_are_kept_oldest_first_until_deleted(open_pg: Callable[[], PostgresStore]) -> None:
    store = open_pg()
    assert store.pending_requests() == []
    late = store.add_request("prices", "manual", T0 + timedelta(seconds=5))
    early = store.add_request("orders", "manual", T0)
    # A second request for a type is kept too: the orchestrator coalesces.
    again = store.add_request("orders", "manual", T0 + timedelta(seconds=9))
    assert len({late, early, again}) == 3
    other = open_pg()  # another replica sees the same rows
    assert other.pending_requests() == [
        (early, "orders", "manual", T0),
        (late, "prices", "manual", T0 + timedelta(seconds=5)),
        (again, "orders", "manual", T0 + timedelta(seconds=9)),
    ]
    other.delete_requests([early, again, 10**12])  # an unknown id is ignored
    other.delete_requests([])
    assert [row[0] for row in store.pending_requests()] == [late]
    assert store.pending_requests()[0][3].tzinfo == UTC


def test_a_naive_request_time_is_refused(open_pg: Callable[[], PostgresStore]) -> None:
    with pytest.raises(InvalidValueError, match="requestedAt"):
        open_pg().add_request("orders", "manual", datetime(2026, 1, 1))


def test_requests_survive_a_dropped_connection(
    open_pg: Callable[[], PostgresStore], admin: Admin, schema: str
) -> None:
    name = f"store-{schema}"
    store = PostgresStore(f"{PG_DSN} application_name={name}", schema=schema)
    first = store.add_request("orders", "manual", T0)
    [terminated] = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
    ).fetchall()
    assert terminated == (True,)
    second = store.add_request("ddt", "manual", T0 + timedelta(seconds=1))  # reconnects if needed
    assert [row[0] for row in store.pending_requests()] == [first, second]
    store.close()


def test_an_older_schema_gains_the_requests_table(
    open_pg: Callable[[], PostgresStore], admin: Admin, schema: str
) -> None:
    # A schema as version 1 left it, made by version 1's own statements.
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    admin.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    for statement in POSTGRES_MIGRATIONS[0]:
        admin.execute(statement)
    admin.execute("CREATE TABLE archibald_schema (version INTEGER NOT NULL)")
    admin.execute("INSERT INTO archibald_schema (version) VALUES (1)")
    admin.execute("RESET search_path")
    store = open_pg()
    request = store.add_request("orders", "manual", T0)
    assert store.pending_requests() == [(request, "orders", "manual", T0)]
    version = admin.execute(sql.SQL("SELECT version FROM {}.archibald_schema").format(sql.Identifier(schema)))
    assert version.fetchall() == [(SCHEMA_VERSION,)]


# --- epoch and entries ----------------------------------------------------------------


def test_ensure_epoch_first_writer_wins(open_durable: Callable[[], EpochStore]) -> None:
    first, second = open_durable(), open_durable()
    assert first.ensure_epoch(T0) == T0
    assert second.ensure_epoch(T0 + timedelta(hours=1)) == T0
    assert first.ensure_epoch(T0 - timedelta(hours=1)) == T0
    with pytest.raises(InvalidValueError, match="epoch"):
        second.ensure_epoch(datetime(2026, 1, 1))


def test_ensure_epoch_returns_utc(open_durable: Callable[[], EpochStore]) -> None:
    local = T0.astimezone(timezone(timedelta(hours=2)))
    stored = open_durable().ensure_epoch(local)
    assert stored == T0 and stored.utcoffset() == timedelta(0)


def test_ensure_epoch_agrees_under_a_race(open_pg: Callable[[], PostgresStore]) -> None:
    stores = [open_pg() for _ in range(6)]
    stores[0].load()  # create the schema first: the race is on the epoch, not the migration
    results: dict[int, datetime] = {}
    barrier = threading.Barrier(len(stores))

    def race(index: int) -> None:
        barrier.wait(WAIT)
        results[index] = stores[index].ensure_epoch(T0 + timedelta(seconds=index))

    threads = [threading.Thread(target=race, args=(i,), name=f"race-{i}") for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(results) == len(stores)
    assert len(set(results.values())) == 1
    assert stores[0].load().epoch == next(iter(results.values()))


def test_load_entries_matches_load(open_pg: Callable[[], PostgresStore]) -> None:
    store = open_pg()
    assert store.load_entries() == {}
    retuned = DEFAULT_SCHEDULE["orders"].retuned(interval_minutes=20, enabled=False)
    store.save_entry(retuned)
    assert open_pg().load_entries() == {"orders": retuned} == store.load().entries
