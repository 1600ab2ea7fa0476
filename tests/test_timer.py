"""Timers on the ManualClock: exact slots, no drift, retunes, catch-ups, a retune at a slot's instant."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Recorder

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ManualClock, ScaledClock, SyncService
from archibald_actors.clock import Wakeup

MIN = 60.0
HOUR = 3600.0
DAY = 24 * HOUR


def expected_slots(sync_type: str, until: float) -> list[float]:
    entry = DEFAULT_SCHEDULE[sync_type]
    slots, k = [], 0
    while (slot := entry.start_delay + k * entry.interval) <= until:
        slots.append(slot)
        k += 1
    return slots


def test_each_type_fires_exactly_on_its_slots_for_24_hours(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    make_service(recorder.handlers())
    clock.advance(DAY)
    for sync_type in SYNC_TYPES:
        runs = recorder.of(sync_type)
        assert [r.scheduled_at for r in runs] == expected_slots(sync_type, DAY), sync_type
        # Instant handlers: every run starts at its slot's instant, even when slots collide.
        assert all(r.started == r.scheduled_at for r in runs), sync_type
    assert recorder.overlaps == 0


def test_no_drift_after_30_days(clock: ManualClock, make_service: Callable[..., SyncService]) -> None:
    recorder = Recorder(clock)
    make_service(recorder.handlers(coroutine=True))
    started = time.monotonic()
    for _ in range(30):
        clock.advance(DAY)
    elapsed = time.monotonic() - started
    for sync_type in SYNC_TYPES:
        runs = recorder.of(sync_type)
        slots = expected_slots(sync_type, 30 * DAY)
        assert len(runs) == len(slots), sync_type
        assert runs[-1].scheduled_at == slots[-1] == runs[-1].started, sync_type
    print(f"30 virtual days, {len(recorder.runs)} runs, in {elapsed:.1f} s")


def test_colliding_slots_run_in_priority_order_one_after_the_other(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock, duration=60.0)
    make_service(recorder.handlers())
    clock.advance(HOUR)
    at_ten = [(r.sync_type, r.started) for r in recorder.runs if r.scheduled_at == 10 * MIN]
    # orders (priority 6) and prices (priority 1) both have a slot at T+10.
    assert at_ten == [("orders", 10 * MIN), ("prices", 11 * MIN)]
    assert recorder.overlaps == 0
    for earlier, later in zip(recorder.runs, recorder.runs[1:], strict=False):
        assert earlier.finished is not None and earlier.finished <= later.started


def test_all_six_at_one_instant_run_by_priority(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    schedule = {t: e.retuned(start_delay_minutes=30) for t, e in DEFAULT_SCHEDULE.items()}
    recorder = Recorder(clock, duration=1.0)
    make_service(recorder.handlers(), schedule=schedule)
    clock.advance(30 * MIN + 10)
    order = [r.sync_type for r in recorder.runs]
    assert order == ["orders", "customers", "ddt", "invoices", "products", "prices"]


def test_retune_moves_only_that_type_and_keeps_the_grid(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    clock.advance(15 * MIN)
    schedule = service.retune("orders", interval_minutes=20)
    assert schedule["orders"]["interval"] == 20
    assert schedule["orders"]["nextRunAt"] == "2026-01-01T00:20:00.000Z"
    # Lengthening never fires early: slots 0, 10 served; new grid 0, 20, 40 ...
    clock.advance(HOUR - 15 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 10 * MIN, 20 * MIN, 40 * MIN, 60 * MIN]
    # The others kept their own slots.
    assert [r.scheduled_at for r in recorder.of("customers")] == [5 * MIN, 35 * MIN]
    assert [r.scheduled_at for r in recorder.of("ddt")] == [20 * MIN]


def test_shortening_so_a_slot_was_missed_fires_once_now(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    clock.advance(22 * MIN)
    assert [r.scheduled_at for r in recorder.of("customers")] == [5 * MIN]
    service.retune("customers", interval_minutes=5)  # grid 5, 10, 15, 20, 25 ...
    clock.run_due()
    runs = recorder.of("customers")
    assert [(r.scheduled_at, r.started) for r in runs] == [(5 * MIN, 5 * MIN), (20 * MIN, 22 * MIN)]
    assert service.status()["types"]["customers"]["missed"] == 2  # 10 and 15 were skipped
    clock.advance(3 * MIN)
    assert [r.scheduled_at for r in recorder.of("customers")][-1] == 25 * MIN


def test_retuning_the_start_delay_shifts_the_grid(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    clock.advance(MIN)
    schedule = service.retune("products", start_delay_minutes=45)
    assert schedule["products"]["startDelay"] == 45
    assert schedule["products"]["nextRunAt"] == "2026-01-01T00:45:00.000Z"
    clock.advance(3 * HOUR)
    assert [r.scheduled_at for r in recorder.of("products")] == [45 * MIN, 135 * MIN]


def test_pause_and_resume(clock: ManualClock, make_service: Callable[..., SyncService]) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    clock.advance(MIN)
    schedule = service.retune("orders", enabled=False)
    assert schedule["orders"]["enabled"] is False
    assert schedule["orders"]["nextRunAt"] is None
    assert service.status()["types"]["orders"]["timer"] == "paused"
    clock.advance(35 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0]
    service.retune("orders", enabled=True)
    clock.run_due()
    # Resuming fires the latest missed slot once (T+30), then the grid goes on.
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 30 * MIN]
    assert service.status()["types"]["orders"]["timer"] == "running"
    clock.advance(10 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 30 * MIN, 40 * MIN]


def test_stale_wakeups_from_before_a_retune_never_fire(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    clock.advance(MIN)
    for interval in (15, 25, 35, 45):  # each retune re-arms; older wake-ups must be dead
        service.retune("orders", interval_minutes=interval)
    clock.advance(50 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 45 * MIN]


class RetuneAtSlot(ManualClock):
    """A ManualClock that runs a retune at the very instant the first wake-up armed for ``slot`` runs.

    ``retune_first`` puts the retune just before the wake-up's callback, else right
    after it: either way the retune's re-arming and the wake-up meet inside the timer.
    """

    def __init__(self, slot: float, *, retune_first: bool) -> None:
        super().__init__()
        self.slot = slot
        self.retune_first = retune_first
        self.retune: Callable[[], object] = lambda: None
        self._caught = False

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Wakeup:
        if deadline != self.slot or self._caught:
            return super().call_at(deadline, callback)
        self._caught = True

        def wake_and_retune() -> None:
            if self.retune_first:
                self.retune()
            callback()
            if not self.retune_first:
                self.retune()

        return super().call_at(deadline, wake_and_retune)


@pytest.mark.parametrize("retune_first", [False, True], ids=["wake-then-retune", "retune-then-wake"])
def test_a_retune_at_the_instant_of_a_slot_fires_it_once(
    retune_first: bool, make_service: Callable[..., SyncService]
) -> None:
    slot = 20 * MIN  # on both the old (10 min) and the new (20 min) grid of orders
    clock = RetuneAtSlot(slot, retune_first=retune_first)
    recorder = Recorder(clock)
    orders = {"orders": DEFAULT_SCHEDULE["orders"]}
    service = make_service({"orders": recorder.handler("orders")}, clock=clock, schedule=orders, start=False)
    events: list[dict[str, Any]] = []
    service.events.subscribe(events.append)
    service.start()
    clock.advance(15 * MIN)
    clock.retune = lambda: service.retune("orders", interval_minutes=20)
    clock.advance(10 * MIN)
    fired = [e for e in events if e["type"] == "queue.changed"]
    assert [(e["syncType"], e["trigger"], e["coalesced"]) for e in fired] == [("orders", "auto", False)] * 3
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 10 * MIN, 20 * MIN]
    status = service.status()["types"]["orders"]
    assert (status["duplicates"], status["coalesced"], status["missed"]) == (0, 0, 0)
    assert service.schedule()["orders"]["nextRunAt"] == "2026-01-01T00:40:00.000Z"


def test_on_a_real_clock_one_instants_requests_still_run_by_priority() -> None:
    # No settle window: the orchestrator knows exactly whether a wake-up of the instant
    # has not run yet or its request is still on the way, whatever the machine's timing.
    clock = ScaledClock(600)  # the shared slot is one schedule minute (0.1 real s) away
    # Lowest priority first: its timer is armed first, so its request arrives first.
    by_priority = sorted(DEFAULT_SCHEDULE.values(), key=lambda e: e.priority)
    schedule = {e.sync_type: e.retuned(start_delay_minutes=1) for e in by_priority}
    order: list[str] = []
    all_ran = threading.Event()

    def handler(ctx: Any) -> None:
        order.append(ctx.sync_type)
        if len(order) == len(SYNC_TYPES):
            all_ran.set()

    service = SyncService(dict.fromkeys(SYNC_TYPES, handler), clock=clock, schedule=schedule)
    service.start()
    try:
        assert all_ran.wait(10.0), order
    finally:
        service.stop(timeout=5.0)
    assert order == ["orders", "customers", "ddt", "invoices", "products", "prices"]


def test_a_slot_wakes_no_actor_but_the_orchestrator_and_the_view_reads_on(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    # A wake-up fires and re-arms on the clock's thread: the timer and the supervisor stay
    # asleep, so the supervisor publishes no new view; the one it has reads the grid once
    # the slot it knew of has passed.
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    view = service.schedule_view()
    assert view.rows(clock)["orders"]["nextRunAt"] == "2026-01-01T00:10:00.000Z"
    clock.advance(10 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 10 * MIN]
    assert service.schedule_view() is view
    assert service.schedule()["orders"]["nextRunAt"] == "2026-01-01T00:20:00.000Z"
    assert view.fixed_until(clock.now()) == 15 * MIN  # invoices is next


class LateWake(ManualClock):
    """A ManualClock on which the wake-up armed for ``slot`` runs at ``late`` instead (a host suspend)."""

    def __init__(self, slot: float, late: float) -> None:
        super().__init__()
        self.slot, self.late = slot, late

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Wakeup:
        return super().call_at(self.late if deadline == self.slot else deadline, callback)


def test_a_late_wake_up_fires_the_latest_slot_once_and_reports_the_missed_ones(
    make_service: Callable[..., SyncService],
) -> None:
    clock = LateWake(10 * MIN, 35 * MIN)
    recorder = Recorder(clock)
    orders = {"orders": DEFAULT_SCHEDULE["orders"]}
    service = make_service({"orders": recorder.handler("orders")}, clock=clock, schedule=orders)
    clock.advance(36 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 30 * MIN]
    assert service.status()["types"]["orders"]["missed"] == 2  # 10 and 20
    assert service.schedule()["orders"]["nextRunAt"] == "2026-01-01T00:40:00.000Z"
