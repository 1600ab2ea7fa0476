"""Ledger writes per second and the cost of a durable retune, against plain driver calls.

What it measures
----------------
1. ``SqliteStore.append_run`` rows per second, into a real file in a temp directory,
   against plain ``sqlite3`` inserting the same row shape (the store's ``runs`` table with
   both of its indexes, times as ISO text) with the same settings: WAL journal,
   ``synchronous=FULL``, one ``BEGIN IMMEDIATE ... COMMIT`` per row. The two alternate in
   rounds in one process, each on its own file, so disk and cache conditions are shared.
2. The p50/p99 latency of ``service.retune(...)`` (caller to timer re-armed) on a
   ``SyncService`` with a ``SqliteStore`` (the retune is fsynced before it is applied)
   against the same service with a ``MemoryStore``, both on the ``SystemClock`` in the
   same run. The difference is what durability adds to a retune.
3. If PostgreSQL answers (``--pg-dsn``, default the test server): ``PostgresStore.append_run``
   rows per second against plain psycopg inserts of the same row (the store's table shape,
   ``run_key`` uuid and both indexes) on one autocommit connection, in a throwaway schema.

Ratios are ours / plain: 1.00 means the store adds nothing over the driver.

Run (from the repo root)::

    .venv/bin/python bench/store_throughput.py                       # 2000 rows, 500 retunes
    .venv/bin/python bench/store_throughput.py --rows 500 --retunes 200 --no-pg
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from archibald_actors import SyncService, SystemClock
from archibald_actors.domain import RunRecord
from archibald_actors.store import MemoryStore, SqliteStore, Store

ROUNDS = 10
RUNS_TABLE = """CREATE TABLE runs (
    id INTEGER PRIMARY KEY, sync_type TEXT NOT NULL, trigger TEXT NOT NULL, scheduled_at TEXT,
    requested_at TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    outcome TEXT NOT NULL, error TEXT)"""
RUNS_INDEXES = (
    "CREATE INDEX runs_by_type ON runs (sync_type, finished_at DESC, started_at DESC, id DESC)",
    "CREATE INDEX runs_by_finish ON runs (finished_at, started_at, id)",
)


def record(n: int) -> RunRecord:
    """The ``n``-th ledger row: a successful auto run of ``orders``."""
    slot = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=10 * n)
    return RunRecord("orders", "auto", slot, slot, slot, slot + timedelta(seconds=45), "success", None)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def plain_sqlite_writer(path: Path) -> tuple[Callable[[RunRecord], None], Callable[[], None]]:
    """A writer doing what ``SqliteStore.append_run`` does, with nothing around it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for statement in (RUNS_TABLE, *RUNS_INDEXES):
        conn.execute(statement)
    insert = (
        "INSERT INTO runs (sync_type, trigger, scheduled_at, requested_at, started_at, finished_at,"
        " outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def write(r: RunRecord) -> None:
        assert r.scheduled_at is not None
        times = [_iso(t) for t in (r.scheduled_at, r.requested_at, r.started_at, r.finished_at)]
        values = (r.sync_type, r.trigger, *times, r.outcome, r.error)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(insert, values)
        conn.execute("COMMIT")

    return write, conn.close


def rate(write: Callable[[RunRecord], None], rows: int) -> tuple[float, int]:
    """Write ``rows`` records one by one; return (seconds, rows)."""
    start = time.perf_counter()
    for n in range(rows):
        write(record(n))
    return time.perf_counter() - start, rows


def compare_writes(
    ours: Callable[[RunRecord], None], plain: Callable[[RunRecord], None], rows: int
) -> tuple[float, float, float]:
    """Rows/s of ``ours`` and ``plain`` (alternating rounds after a warm-up), and the median
    of the per-round ratios ours/plain (robust against a noisy neighbour on the machine).
    """
    for write in (ours, plain):
        rate(write, 20)
    totals = {"ours": [0.0, 0], "plain": [0.0, 0]}
    ratios = []
    per_round = max(1, rows // ROUNDS)
    for _ in range(ROUNDS):
        rates = {}
        for name, write in (("ours", ours), ("plain", plain)):
            seconds, count = rate(write, per_round)
            totals[name][0] += seconds
            totals[name][1] += count
            rates[name] = count / seconds
        ratios.append(rates["ours"] / rates["plain"])
    ours_rate = totals["ours"][1] / totals["ours"][0]
    return ours_rate, totals["plain"][1] / totals["plain"][0], statistics.median(ratios)


def retune_latencies(store: Store, count: int) -> list[float]:
    """Seconds per ``service.retune`` (customers start delay 5 <-> 6), after 20 warm-up calls."""
    service = SyncService(clock=SystemClock(), store=store)
    service.start()
    try:
        seconds = []
        for n in range(count + 20):
            start = time.perf_counter()
            service.retune("customers", start_delay_minutes=6 if n % 2 == 0 else 5)
            if n >= 20:
                seconds.append(time.perf_counter() - start)
        return seconds
    finally:
        service.stop()


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def postgres_writes(dsn: str, rows: int) -> tuple[float, float, float] | None:
    """``PostgresStore.append_run`` vs plain psycopg rows/s, or None if the server is unreachable."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    from archibald_actors.store import PostgresStore  # noqa: PLC0415

    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL at {dsn!r} is unreachable ({exc}); skipping part 3")
        return None
    schema = f"bench_store_{uuid4().hex[:8]}"
    store = PostgresStore(dsn, schema)
    try:
        store.load()  # creates the schema and its tables
        plain = psycopg.connect(dsn, autocommit=True)
        plain.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        plain.execute("CREATE TABLE plain_runs (LIKE runs INCLUDING ALL)")  # same columns and indexes
        insert = (
            "INSERT INTO plain_runs (run_key, sync_type, trigger, scheduled_at, requested_at, started_at,"
            " finished_at, outcome, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )

        def write_plain(r: RunRecord) -> None:
            values: tuple[Any, ...] = (uuid4(), r.sync_type, r.trigger, r.scheduled_at, r.requested_at)
            plain.execute(insert, (*values, r.started_at, r.finished_at, r.outcome, r.error))

        try:
            return compare_writes(store.append_run, write_plain, rows)
        finally:
            plain.close()
    finally:
        store.close()
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="ledger rows per writer (default %(default)s)")
    parser.add_argument("--retunes", type=int, default=500, help="retunes per store (default %(default)s)")
    parser.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL part")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="archibald-bench-") as tmp:
        directory = Path(tmp)
        store = SqliteStore(directory / "store.db")
        store.load()
        plain, close_plain = plain_sqlite_writer(directory / "plain.db")
        try:
            ours_rate, plain_rate, median = compare_writes(store.append_run, plain, args.rows)
        finally:
            store.close()
            close_plain()
        durable = retune_latencies(SqliteStore(directory / "retune.db"), args.retunes)
    memory = retune_latencies(MemoryStore(), args.retunes)
    pg = None if args.no_pg else postgres_writes(args.pg_dsn, args.rows)

    print(f"1. ledger rows written per second ({args.rows} rows each, {ROUNDS} alternating rounds)")
    print(f"   {'writer':<48} {'rows/s':>9}")
    print(f"   {'SqliteStore.append_run':<48} {ours_rate:>9.0f}")
    print(f"   {'plain sqlite3 (WAL, synchronous=FULL, 1 tx/row)':<48} {plain_rate:>9.0f}")
    print(f"   ratio ours/plain: {ours_rate / plain_rate:.2f} (median of the rounds' ratios {median:.2f})")
    print(f"2. service.retune latency ({args.retunes} retunes each, SystemClock)")
    print(f"   {'store':<48} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for name, values in (("SqliteStore (fsync before apply)", durable), ("MemoryStore", memory)):
        mean = statistics.fmean(values) * 1000
        print(f"   {name:<48} {pct(values, 0.5):>9.3f} {pct(values, 0.99):>9.3f} {mean:>9.3f}")
    added = pct(durable, 0.99) - pct(memory, 0.99)
    ratio = pct(durable, 0.99) / pct(memory, 0.99)
    print(f"   ratio p99 sqlite/memory: {ratio:.2f}; durability adds {added:.3f} ms at p99")
    if pg is not None:
        print(f"3. PostgreSQL rows written per second ({args.rows} rows each, {ROUNDS} alternating rounds)")
        print(f"   {'writer':<48} {'rows/s':>9}")
        print(f"   {'PostgresStore.append_run':<48} {pg[0]:>9.0f}")
        print(f"   {'plain psycopg (autocommit, 1 statement/row)':<48} {pg[1]:>9.0f}")
        print(f"   ratio ours/plain: {pg[0] / pg[1]:.2f} (median of the rounds' ratios {pg[2]:.2f})")


if __name__ == "__main__":
    main()
