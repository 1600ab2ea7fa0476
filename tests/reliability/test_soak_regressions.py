"""Regressions for core bugs the soak and its probes found (fixed in a0d8bcf).

- a run stopped by ``exclusive()`` was re-queued as a retry of its own, already claimed,
  slot and then skipped as a duplicate: it never ran again;
- an auto slot merged into a pending manual request ran unclaimed, so the store never
  recorded it as served and a restarted service ran the same slot again;
- ``stop()`` while the orchestrator was restarting skipped the drain: the running sync
  was stopped but never recorded.
"""

from __future__ import annotations

from collections.abc import Callable

from conftest import Recorder

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, SyncService
from archibald_actors.store.memory import MemoryStore

MIN = 60.0


def test_a_run_stopped_by_a_hold_runs_again_after_the_release(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock, duration=2 * MIN)
    schedule = {t: e.retuned(enabled=t == "products") for t, e in DEFAULT_SCHEDULE.items()}
    service = make_service(recorder.handlers(), schedule=schedule)
    clock.advance(30 * MIN + 10)  # products' T+30 slot is running
    with service.exclusive(timeout=5):
        clock.run_due()
    clock.advance(10 * MIN)  # released long before products' next slot (T+120)
    assert [h["outcome"] for h in service.history(sync_type="products")] == ["success", "cancelled"]
    assert [(r.trigger, r.scheduled_at) for r in recorder.of("products")] == [
        ("auto", 30 * MIN),
        ("retry", 30 * MIN),
    ]


def test_a_slot_served_by_a_merged_manual_run_does_not_run_again_after_a_restart(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = MemoryStore()
    schedule = {t: e.retuned(enabled=t in ("orders", "customers")) for t, e in DEFAULT_SCHEDULE.items()}
    recorder = Recorder(clock, duration=lambda t: 400.0 if t == "customers" else 0.0)
    service = make_service(recorder.handlers(), schedule=schedule, store=store)
    clock.advance(5 * MIN + 10)  # customers runs from T+5:00 to T+11:40
    service.request_sync("orders")  # waits behind it
    clock.advance(7 * MIN)  # orders' T+10 slot merges into the manual request, which runs at T+11:40
    assert [(r.trigger, r.scheduled_at) for r in recorder.of("orders")] == [
        ("auto", 0.0),
        ("manual", 10 * MIN),
    ]
    service.stop()
    make_service(recorder.handlers(), schedule=schedule, store=store)  # the same store: a restart
    clock.advance(MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0.0, 10 * MIN]


def test_stopping_while_the_orchestrator_restarts_still_records_the_running_sync(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = MemoryStore()
    schedule = {t: e.retuned(enabled=t == "orders") for t, e in DEFAULT_SCHEDULE.items()}
    recorder = Recorder(clock, duration=5 * MIN)
    service = make_service(recorder.handlers(coroutine=True), schedule=schedule, store=store)
    clock.advance(10)  # orders' T+0 run is in progress
    service.inject_fault("orchestrator")
    clock.run_due()
    assert service.status()["orchestrator"] == "restarting"
    service.stop(timeout=5)
    assert [(r.sync_type, r.outcome) for r in store.runs()] == [("orders", "cancelled")]
