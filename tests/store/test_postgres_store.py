"""What only the PostgreSQL store promises: reconnecting, schemas of its own, clear failures."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest
from pg_server import PG_DSN
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from archibald_actors.domain import RunRecord
from archibald_actors.errors import InvalidValueError, StoreError
from archibald_actors.schedule import DEFAULT_SCHEDULE
from archibald_actors.store import PostgresStore, postgres_url
from archibald_actors.store.schema import SCHEMA_VERSION

from .support import T0


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)


def _terminate(store: PostgresStore) -> None:
    """Have the server drop the store's connection, as a restart or a network cut would."""
    conn = store._dialect._conn
    assert conn is not None
    pid = conn.info.backend_pid
    with _admin() as admin:
        # The timeout makes the call wait until the backend has exited.
        assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone() == (True,)


def test_reconnects_after_the_connection_drops(
    pg_schema: str, make_run: Callable[..., RunRecord], caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresStore(PG_DSN, schema=pg_schema)
    try:
        store.load()
        _terminate(store)
        store.save_entry(DEFAULT_SCHEDULE["orders"].retuned(interval_minutes=15))
        _terminate(store)
        store.append_run(make_run())
        _terminate(store)
        assert store.claim_slot("orders", 600.0) is True
        _terminate(store)
        assert store.load().entries["orders"].interval_minutes == 15
        assert store.runs() == [make_run()]  # appended once despite the drop
        reconnects = [r for r in caplog.records if "reconnecting" in r.getMessage()]
        assert [r.getMessage().split(":")[1].split()[0] for r in reconnects] == [
            "save_entry",
            "append_run",
            "claim_slot",
            "load",
        ]
    finally:
        store.close()


def test_an_unreachable_server_raises_store_error() -> None:
    store = PostgresStore("host=127.0.0.1 port=1 user=postgres dbname=test password=hunter2", schema="x")
    with pytest.raises(StoreError, match="port=1") as caught:
        store.load()
    assert "hunter2" not in str(caught.value)
    store.close()


def test_each_schema_is_its_own_store(pg_schema: str) -> None:
    other_schema = f"{pg_schema}_b"
    first = PostgresStore(PG_DSN, schema=pg_schema)
    second = PostgresStore(PG_DSN, schema=other_schema)
    try:
        first.load()
        second.load()
        first.ensure_epoch(T0)
        assert first.load().epoch == T0
        assert second.load().epoch is None
        assert first.claim_slot("orders", 0.0) is True
        assert second.claim_slot("orders", 0.0) is True
    finally:
        first.close()
        second.close()
        with _admin() as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(other_schema)))


def test_a_schema_of_another_program_is_refused(pg_schema: str) -> None:
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg_schema)))
        admin.execute(sql.SQL("CREATE TABLE {}.invoices (id int)").format(sql.Identifier(pg_schema)))
    store = PostgresStore(PG_DSN, schema=pg_schema)
    with pytest.raises(StoreError, match="another program"):
        store.load()
    store.close()


def test_a_newer_schema_is_refused(pg_schema: str) -> None:
    store = PostgresStore(PG_DSN, schema=pg_schema)
    store.load()
    store.close()
    with _admin() as admin:
        admin.execute(
            sql.SQL("UPDATE {}.archibald_schema SET version = %s").format(sql.Identifier(pg_schema)),
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(PG_DSN, schema=pg_schema).load()


def test_instances_starting_together_migrate_once(pg_schema: str) -> None:
    stores = [PostgresStore(PG_DSN, schema=pg_schema) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start(store: PostgresStore) -> None:
        try:
            barrier.wait(timeout=10)
            store.load()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.close()
    assert errors == []
    with _admin() as admin:
        version = admin.execute(
            sql.SQL("SELECT version FROM {}.archibald_schema").format(sql.Identifier(pg_schema))
        ).fetchall()
    assert version == [(SCHEMA_VERSION,)]


def test_a_bad_schema_name_or_dsn_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="schema"):
        PostgresStore(PG_DSN, schema="")
    with pytest.raises(InvalidValueError, match="dsn"):
        PostgresStore("this is = not a dsn '")


def test_postgres_url_turns_a_key_value_dsn_into_a_url() -> None:
    dsn = "user=sync-admin password='p@ss:w/rd %?#\\'x' host=db.example.com port=6543 dbname=orders"
    url = postgres_url(dsn)
    assert url == "postgresql://sync-admin:p%40ss%3Aw%2Frd%20%25%3F%23%27x@db.example.com:6543/orders"
    assert conninfo_to_dict(url) == conninfo_to_dict(dsn)  # libpq reads the same parameters back
    assert postgres_url("dbname=test") == "postgresql://postgres@127.0.0.1:5432/test"


def test_postgres_url_passes_a_url_through_and_refuses_a_bad_dsn() -> None:
    for url in ("postgresql://u:p%40@h:5433/d?sslmode=require", "postgres://localhost/db"):
        assert postgres_url(url) == url
    with pytest.raises(InvalidValueError, match="dsn"):
        postgres_url("this is = not a dsn '")
