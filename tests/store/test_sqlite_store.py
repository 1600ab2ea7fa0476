"""What only the SQLite store promises: WAL, durability, refusal of foreign or damaged files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import archibald_actors
from archibald_actors.domain import RunRecord
from archibald_actors.errors import StoreError
from archibald_actors.schedule import DEFAULT_SCHEDULE, ScheduleEntry
from archibald_actors.store import SqliteStore
from archibald_actors.store.schema import SCHEMA_VERSION

from .support import T0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def _filled_database(path: Path, make_run: Callable[..., RunRecord]) -> None:
    store = SqliteStore(path)
    store.load()
    store.ensure_epoch(T0)
    for index in range(300):
        store.append_run(make_run("orders", float(index), error="x" * 200))
    store.close()


def test_a_missing_file_is_created_in_wal_mode_with_full_sync(db_path: Path) -> None:
    store = SqliteStore(db_path)
    try:
        assert store.load().epoch is None
        assert db_path.is_file()
        conn = store._dialect._conn  # the setting is per connection: ask the store's own
        assert conn is not None
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        store.close()
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert other.execute("SELECT version FROM archibald_schema").fetchall() == [(SCHEMA_VERSION,)]
    other.close()


def test_a_text_file_is_refused_and_left_untouched(db_path: Path) -> None:
    db_path.write_text("these are my notes, not a database\n" * 50)
    before = db_path.read_bytes()
    store = SqliteStore(db_path)
    with pytest.raises(StoreError, match="not an SQLite database") as caught:
        store.load()
    assert str(db_path) in str(caught.value)
    with pytest.raises(StoreError, match="not an SQLite database"):
        store.save_served("orders", 1.0)
    assert db_path.read_bytes() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


@pytest.mark.parametrize("keep", [0.5, 0.25])
def test_a_truncated_database_is_refused(
    db_path: Path, make_run: Callable[..., RunRecord], keep: float
) -> None:
    _filled_database(db_path, make_run)
    data = db_path.read_bytes()
    assert len(data) > 16 * 4096
    cut = int(len(data) * keep) // 4096 * 4096  # on a page boundary: only the pages' absence tells
    db_path.write_bytes(data[:cut])
    with pytest.raises(StoreError, match="corrupt") as caught:
        SqliteStore(db_path).load()
    assert str(db_path) in str(caught.value)
    assert db_path.stat().st_size == cut


def test_another_programs_database_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as other:
        other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    other.close()
    with pytest.raises(StoreError, match="another program") as caught:
        SqliteStore(db_path).load()
    assert str(db_path) in str(caught.value)
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # not even switched to WAL
    other.close()


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    SqliteStore(db_path).load()
    with sqlite3.connect(db_path) as other:
        other.execute("UPDATE archibald_schema SET version = ?", (SCHEMA_VERSION + 1,))
    other.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(db_path).load()


def test_a_missing_directory_is_an_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "state.db"
    with pytest.raises(StoreError) as caught:
        SqliteStore(path).load()
    assert str(path) in str(caught.value)


def test_concurrent_writes_from_threads(db_path: Path, make_run: Callable[..., RunRecord]) -> None:
    store = SqliteStore(db_path)
    store.load()
    workers, rounds = 8, 40
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait(timeout=10)
            for index in range(rounds):
                store.append_run(make_run("orders", float(worker * rounds + index)))
                store.save_served(f"type{worker}", float(index))
                store.save_entry(ScheduleEntry(f"type{worker}", 5.0 + index, 0.0, worker))
                store.runs("orders", limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    store.close()
    assert errors == []
    reopened = SqliteStore(db_path)
    try:
        state = reopened.load()
        assert len(reopened.runs(limit=10_000)) == workers * rounds
    finally:
        reopened.close()
    assert state.served == {f"type{w}": float(rounds - 1) for w in range(workers)}
    assert {t: e.interval_minutes for t, e in state.entries.items()} == {
        f"type{w}": 5.0 + rounds - 1 for w in range(workers)
    }


_WRITER = """
import sys
from datetime import UTC, datetime
from archibald_actors.schedule import DEFAULT_SCHEDULE
from archibald_actors.store.sqlite import SqliteStore
store = SqliteStore(sys.argv[1])
store.load()
store.ensure_epoch(datetime(2026, 3, 1, tzinfo=UTC))
store.save_entry(DEFAULT_SCHEDULE["orders"].retuned(interval_minutes=25))
print("saved", flush=True)
sys.stdin.read()  # wait here, connection open, until killed
"""


def test_a_retune_survives_sigkill_right_after_save(db_path: Path) -> None:
    root = Path(archibald_actors.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "saved\n"
        child.kill()  # SIGKILL: no atexit, no close, no checkpoint
        assert child.wait(timeout=30) == -9
    store = SqliteStore(db_path)
    try:
        entries = store.load().entries
    finally:
        store.close()
    assert entries == {"orders": DEFAULT_SCHEDULE["orders"].retuned(interval_minutes=25)}


def test_the_store_reopens_after_close(db_path: Path) -> None:
    store = SqliteStore(db_path)
    store.load()
    store.close()
    store.save_served("orders", 60.0)  # reconnects lazily
    try:
        assert store.load().served == {"orders": 60.0}
    finally:
        store.close()
        store.close()  # idempotent


def test_entry_fields_without_a_column_round_trip_and_unknown_ones_are_ignored(db_path: Path) -> None:
    store = SqliteStore(db_path)
    try:
        store.load()
        entry = DEFAULT_SCHEDULE["products"].retuned(interval_minutes=120)
        store.save_entry(entry)
        assert store.load().entries == {"products": entry}
        with sqlite3.connect(db_path) as other:  # as left by a later version with one more field
            other.execute("""UPDATE schedule_entries SET extra = json_set(extra, '$.future_field', 1)""")
        other.close()
        assert store.load().entries == {"products": entry}
    finally:
        store.close()
