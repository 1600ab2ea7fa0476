"""Durable state on a real SQLite file: restarts keep the schedule, the grid and the ledger."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ManualClock, StoreError, SyncService
from archibald_actors.store import MemoryStore, SqliteStore

MIN = 60.0
HOUR = 60 * MIN
#: Realistic run lengths in seconds (measured in production, after the move to report exports).
DURATIONS = {"orders": 45, "customers": 20, "prices": 75, "invoices": 30, "ddt": 30, "products": 50}


def handlers() -> dict[str, Any]:
    def make(sync_type: str) -> Any:
        def handle(ctx: Any) -> None:
            ctx.sleep(DURATIONS[sync_type])

        return handle

    return {t: make(t) for t in SYNC_TYPES}


def restart_gracefully(service: SyncService, clock: ManualClock) -> None:
    """stop(drain=True) lets the running sync finish; the clock moves on until it has."""
    stopper = threading.Thread(target=service.stop, kwargs={"timeout": 30, "drain": True}, name="t-stop")
    stopper.start()
    while stopper.is_alive():
        deadline = clock.next_deadline()
        if deadline is not None:
            clock.advance_to(deadline)
        stopper.join(timeout=0.05)


def test_restarts_every_20_minutes_for_12_hours_lose_and_repeat_nothing(
    tmp_path: Path, clock: ManualClock
) -> None:
    db = tmp_path / "sync.db"
    service = SyncService(handlers(), clock=clock, store=SqliteStore(db))
    service.start()
    service.retune("ddt", interval_minutes=60)
    restarts = 0
    while clock.now() < 12 * HOUR:
        clock.advance_to(min(12 * HOUR, (clock.now() // (20 * MIN) + 1) * 20 * MIN))
        restart_gracefully(service, clock)
        restarts += 1
        service = SyncService(handlers(), clock=clock, store=SqliteStore(db))
        service.start()
        assert service.schedule()["ddt"]["interval"] == 60  # the retune survived
    service.stop()
    assert restarts >= 36

    ledger = SqliteStore(db).runs(limit=100_000)
    slots = Counter((r.sync_type, r.scheduled_at) for r in ledger)
    assert [key for key, n in slots.items() if n > 1] == []  # no slot ran twice
    assert {r.outcome for r in ledger} == {"success"}
    products = sorted(r.finished_at for r in ledger if r.sync_type == "products")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(products)]
    assert len(products) >= 7
    assert max(gaps) <= 90 * MIN + 10 * MIN  # once per slot; start waits at most a few runs
    first_start = min(r.started_at for r in ledger)
    assert (products[0] - first_start).total_seconds() <= 40 * MIN


def test_the_grid_continues_from_the_stored_epoch(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "sync.db"
    with SyncService(clock=clock, store=SqliteStore(db)) as service:
        clock.run_due()
        clock.advance(7 * MIN)
        assert service.schedule()["orders"]["nextRunAt"] == "2026-01-01T00:10:00.000Z"
    clock.advance(45 * MIN)  # down from T+7 to T+52: orders' T+50 slot is due
    with SyncService(clock=clock, store=SqliteStore(db)) as service:
        clock.run_due()
        orders = service.history(sync_type="orders")
        assert [h["scheduledAt"] for h in orders] == ["2026-01-01T00:50:00.000Z", "2026-01-01T00:00:00.000Z"]
        status = service.status()["types"]["orders"]
        assert status["missed"] == 4  # 10, 20, 30, 40 were skipped by the catch-up
        assert service.schedule()["orders"]["nextRunAt"] == "2026-01-01T01:00:00.000Z"


def test_a_slot_fired_but_still_queued_at_shutdown_runs_after_the_restart(
    tmp_path: Path, clock: ManualClock
) -> None:
    db = tmp_path / "sync.db"
    schedule = {t: e.retuned(enabled=t in ("orders", "prices")) for t, e in DEFAULT_SCHEDULE.items()}
    service = SyncService(handlers(), clock=clock, store=SqliteStore(db), schedule=schedule)
    service.start()
    clock.advance(10 * MIN)  # orders runs, prices (same instant, lower priority) waits
    assert [q["syncType"] for q in service.status()["queue"]] == ["prices"]
    restart_gracefully(service, clock)
    service = SyncService(handlers(), clock=clock, store=SqliteStore(db), schedule=schedule)
    service.start()
    clock.advance(5 * MIN)
    service.stop()
    ledger = SqliteStore(db).runs()
    assert sorted((r.sync_type, r.scheduled_at.minute) for r in ledger if r.scheduled_at) == [
        ("orders", 0),
        ("orders", 10),
        ("prices", 10),
    ]


def test_a_retune_that_cannot_be_stored_is_not_applied(clock: ManualClock) -> None:
    class BrokenStore(MemoryStore):
        def save_entry(self, entry: Any) -> None:
            raise StoreError("disk full")

    service = SyncService(clock=clock, store=BrokenStore())
    service.start()
    try:
        clock.run_due()
        before = service.schedule()
        with pytest.raises(StoreError, match="disk full"):
            service.retune("orders", interval_minutes=20)
        assert service.schedule() == before
    finally:
        service.stop()


def test_a_corrupt_database_is_left_alone_and_the_service_waits_for_a_good_one(
    tmp_path: Path, clock: ManualClock
) -> None:
    db = tmp_path / "sync.db"
    db.write_bytes(b"this is not a database" * 100)
    service = SyncService(clock=clock, store=SqliteStore(db))
    service.start()  # no exception: the service runs degraded and reads the store again later
    try:
        clock.run_due()
        health = service.health()
        assert (health["status"], health["store"]) == ("degraded", "unavailable")
        assert {t["timer"] for t in service.status()["types"].values()} == {"standby"}
        clock.advance(10 * MIN)
        assert db.read_bytes() == b"this is not a database" * 100  # never reset
        assert service.status()["types"]["orders"]["runs"] == 0
        db.rename(tmp_path / "sync.db.broken")  # the operator moves it away
        clock.advance(MIN)  # the next retry opens a fresh database
        assert service.status()["store"] == "ok"
        assert service.status()["types"]["orders"]["runs"] == 1
    finally:
        service.stop()


def test_runs_past_the_retention_are_pruned(clock: ManualClock) -> None:
    store = MemoryStore()
    with SyncService(clock=clock, store=store, retention_days=1) as service:
        clock.run_due()
        clock.advance(30 * HOUR)  # the 6-hourly prune at T+30h drops runs that ended before T+6h
        oldest = min(r.finished_at for r in store.runs(limit=10_000))
        assert (oldest - clock.wall(0)).total_seconds() >= 5 * HOUR
        assert len(service.history(sync_type="orders")) == 100


def test_retention_must_be_positive(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        SyncService(clock=clock, retention_days=0)


def test_a_manual_request_still_queued_at_shutdown_runs_after_the_restart(
    tmp_path: Path, clock: ManualClock
) -> None:
    db = tmp_path / "sync.db"
    schedule = {t: e.retuned(enabled=t == "products") for t, e in DEFAULT_SCHEDULE.items()}
    service = SyncService(handlers(), clock=clock, store=SqliteStore(db), schedule=schedule)
    service.start()
    clock.advance(30 * MIN + 1)  # products runs for 50 s
    assert service.request_sync("invoices") == {"syncType": "invoices", "coalesced": False}
    service.stop()  # products is stopped and recorded; invoices never started
    service = SyncService(handlers(), clock=clock, store=SqliteStore(db), schedule=schedule)
    service.start()
    clock.advance(MIN)
    service.stop()
    ledger = SqliteStore(db).runs()
    assert [(r.sync_type, r.trigger, r.outcome) for r in ledger if r.sync_type == "invoices"] == [
        ("invoices", "manual", "success")
    ]
    assert SqliteStore(db).pending_requests() == []
