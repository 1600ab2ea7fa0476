"""The ``Store`` contract, run against every backend (memory, SQLite, PostgreSQL).

"Reopen" makes a new store object on the same file or schema: the restart case. The last
tests hold the durable stores to stricter input checks and ``prune_claims``, which
``MemoryStore`` does not offer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from archibald_actors.domain import RunRecord
from archibald_actors.errors import InvalidValueError
from archibald_actors.schedule import DEFAULT_SCHEDULE, ScheduleEntry
from archibald_actors.store import Store, StoredState

from .support import T0, Backend

MakeRun = Callable[..., RunRecord]


def test_load_on_empty_store(backend: Backend) -> None:
    assert backend.open().load() == StoredState()


def test_epoch_round_trip_and_first_writer_wins(backend: Backend) -> None:
    store = backend.open()
    store.load()
    assert store.ensure_epoch(T0) == T0
    assert backend.open().load().epoch == T0
    later = T0 + timedelta(hours=1, microseconds=7)
    assert store.ensure_epoch(later) == T0
    epoch = backend.open().load().epoch
    assert epoch == T0
    assert epoch is not None and epoch.utcoffset() == timedelta(0)


def test_entries_upsert_and_reload(backend: Backend) -> None:
    store = backend.open()
    store.load()
    orders = DEFAULT_SCHEDULE["orders"].retuned(interval_minutes=20)
    prices = ScheduleEntry("prices", 7.5, 12.25, 1, enabled=False, timeout_seconds=90.5)
    store.save_entry(orders)
    store.save_entry(prices)
    store.save_entry(orders.retuned(start_delay_minutes=3, enabled=False))
    entries = backend.open().load().entries
    assert entries == {"orders": orders.retuned(start_delay_minutes=3, enabled=False), "prices": prices}
    assert all(isinstance(e, ScheduleEntry) for e in entries.values())
    assert entries["prices"].enabled is False and entries["orders"].priority == 6


def test_served_round_trip(backend: Backend) -> None:
    store = backend.open()
    store.load()
    store.save_served("orders", 600.0)
    store.save_served("prices", 0.1 + 0.2)  # not representable in decimal: must come back bit-exact
    store.save_served("orders", 1200.0)
    assert backend.open().load().served == {"orders": 1200.0, "prices": 0.1 + 0.2}


def test_everything_survives_a_restart(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    store.ensure_epoch(T0)
    store.save_entry(DEFAULT_SCHEDULE["ddt"].retuned(interval_minutes=60))
    store.save_served("ddt", 1200.0)
    store.append_run(make_run("ddt"))
    store.close()
    reopened = backend.open()
    assert reopened.load() == StoredState(
        T0, {"ddt": DEFAULT_SCHEDULE["ddt"].retuned(interval_minutes=60)}, {"ddt": 1200.0}
    )
    assert reopened.runs() == [make_run("ddt")]


def test_runs_round_trip_every_field(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    records = [
        make_run("orders", 10.0),
        make_run("prices", 20.0, trigger="manual", scheduled=False, outcome="failed", error="ERP said: nö"),
        make_run("ddt", 30.0, trigger="retry", outcome="timeout", error="timed out after 900 s"),
        make_run("products", 40.0, outcome="cancelled"),
    ]
    for record in records:
        store.append_run(record)
    loaded = backend.open().runs()
    assert loaded == records[::-1]
    for record in loaded:
        for moment in (record.requested_at, record.started_at, record.finished_at):
            assert moment.utcoffset() == timedelta(0)
    assert loaded[2].scheduled_at is None
    assert loaded[0].duration_ms == 30_000


def test_runs_newest_first_with_filter_and_limit(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    for finished in (30.0, 10.0, 50.0, 20.0, 40.0):  # appended out of order
        store.append_run(make_run("orders", finished))
        store.append_run(make_run("prices", finished + 1))
    store.append_run(make_run("orders", 45.0, duration=10.0))
    store.append_run(make_run("orders", 45.0, duration=20.0))  # same finish, started earlier

    def finishes(runs: list[RunRecord]) -> list[tuple[str, float, float]]:
        return [
            (r.sync_type, (r.finished_at - T0).total_seconds(), (r.started_at - T0).total_seconds())
            for r in runs
        ]

    orders = store.runs("orders")
    assert finishes(orders) == [  # by start: the order paging back by ``before`` goes in
        ("orders", 45.0, 35.0),
        ("orders", 45.0, 25.0),
        ("orders", 50.0, 20.0),
        ("orders", 40.0, 10.0),
        ("orders", 30.0, 0.0),
        ("orders", 20.0, -10.0),
        ("orders", 10.0, -20.0),
    ]
    assert finishes(store.runs("orders", limit=2)) == finishes(orders[:2])
    everything = store.runs()
    assert len(everything) == 12
    assert [r.started_at for r in everything] == sorted((r.started_at for r in everything), reverse=True)
    assert [r.sync_type for r in store.runs(limit=3)] == ["orders", "orders", "prices"]
    assert store.runs(limit=0) == []
    assert store.runs("invoices") == []


def test_prune_deletes_runs_finished_before_the_cutoff(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    for finished in (10.0, 20.0, 30.0, 40.0):
        store.append_run(make_run("orders", finished))
        store.append_run(make_run("customers", finished))
    cutoff = T0 + timedelta(seconds=30)  # a run finishing exactly at the cutoff is kept
    assert store.prune(cutoff) == 4
    assert sorted((r.finished_at - T0).total_seconds() for r in backend.open().runs()) == [30, 30, 40, 40]
    assert store.prune(cutoff) == 0
    store.append_run(make_run("prices", 5.0))  # an old run recorded late (a retried write)
    assert store.prune(cutoff) == 1
    assert store.prune(T0 + timedelta(days=1)) == 4
    assert store.runs() == []


def test_epoch_in_another_time_zone_is_the_same_instant(backend: Backend) -> None:
    store = backend.open()
    store.load()
    local = T0.astimezone(timezone(timedelta(hours=2)))
    assert store.ensure_epoch(local) == T0
    assert backend.open().load().epoch == T0


# --- the cluster method -------------------------------------------


def test_claim_slot_is_granted_once(backend: Backend) -> None:
    node_a, node_b = backend.open(), backend.open()
    node_a.load()
    node_b.load()
    assert node_a.claim_slot("orders", 600.0) is True
    assert node_a.claim_slot("orders", 600.0) is False
    assert node_b.claim_slot("orders", 600.0) is False
    assert node_b.claim_slot("orders", 1200.0) is True
    assert node_b.claim_slot("prices", 600.0) is True
    assert backend.open().claim_slot("orders", 1200.0) is False  # claims outlive the object


def test_claim_slot_compares_slots_to_the_millisecond(backend: Backend) -> None:
    store = backend.open()
    assert store.claim_slot("orders", 1800.0) is True
    assert store.claim_slot("orders", 1800.0000000002) is False  # float noise of another node
    assert store.claim_slot("orders", 1800.001) is True


def test_claim_slot_race_has_one_winner(backend: Backend) -> None:
    nodes = [backend.open() for _ in range(8)]
    for node in nodes:
        node.load()
    barrier = threading.Barrier(len(nodes))
    results: list[bool] = []
    errors: list[BaseException] = []

    def contend(node: Store) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(node.claim_slot("customers", 300.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]


def test_claim_slot_rejects_a_non_finite_slot(durable_backend: Backend) -> None:
    with pytest.raises(InvalidValueError, match="slotOffset"):
        durable_backend.open().claim_slot("orders", float("nan"))


def test_prune_claims(durable_backend: Backend) -> None:
    store: Any = durable_backend.open()
    assert store.claim_slot("orders", 600.0) is True
    assert store.prune_claims(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.prune_claims(datetime.now(UTC) + timedelta(hours=1)) == 1
    assert store.claim_slot("orders", 600.0) is True


# --- stricter input checks of the durable stores -----------------------------------------


def test_naive_datetimes_are_refused(durable_backend: Backend, make_run: MakeRun) -> None:
    store = durable_backend.open()
    naive = datetime(2026, 3, 1, 8, 0)
    with pytest.raises(InvalidValueError, match="epoch"):
        store.ensure_epoch(naive)
    with pytest.raises(InvalidValueError, match="olderThan"):
        store.prune(naive)
    record = make_run()
    bad = RunRecord(**{**{f: getattr(record, f) for f in record.__slots__}, "finished_at": naive})
    with pytest.raises(InvalidValueError, match="finishedAt"):
        store.append_run(bad)
    assert store.runs() == []


def test_negative_limit_is_refused(durable_backend: Backend) -> None:
    with pytest.raises(InvalidValueError, match="limit"):
        durable_backend.open().runs(limit=-1)


def test_requests_are_kept_until_deleted_however_many(backend: Backend) -> None:
    store = backend.open()
    store.load()
    ids = [store.add_request("orders", "manual", T0 + timedelta(seconds=n)) for n in range(1200)]
    assert len(set(ids)) == 1200
    store.delete_requests([*ids[:1100], 10**12])  # more ids than old SQLite takes in one statement
    pending = backend.open().pending_requests()
    assert [row[0] for row in pending] == ids[1100:]
    assert pending[0][1:] == ("orders", "manual", T0 + timedelta(seconds=1100))
