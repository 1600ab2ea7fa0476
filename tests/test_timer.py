"""Timers on the ManualClock (exact slots, no drift, retunes, catch-ups); their heads-up on a real one."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka
from conftest import Recorder

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ManualClock, ScaledClock, SyncService
from archibald_actors.actors.base import Address
from archibald_actors.actors.timer import TimerActor
from archibald_actors.clock import Activity
from archibald_actors.messages import Expect, RequestSync

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


def test_on_a_real_clock_the_orchestrator_is_told_to_stay_awake_before_each_slot() -> None:
    clock = ScaledClock(6000)  # 1 schedule minute = 10 ms: orders every 100 ms
    got: queue.SimpleQueue[tuple[float, object]] = queue.SimpleQueue()

    class Recording(pykka.ThreadingActor):
        use_daemon_thread = True

        def on_receive(self, message: Any) -> None:
            got.put((clock.now(), message))

    orchestrator, supervisor = Address("orchestrator", Activity()), Address("supervisor", Activity())
    refs = [Recording.start(), Recording.start()]
    orchestrator.attach(refs[0])
    supervisor.attach(refs[1])
    timer = Address("orders", Activity())
    refs.append(
        TimerActor.start(
            address=timer,
            clock=clock,
            entry=DEFAULT_SCHEDULE["orders"],
            epoch=clock.now() + 60.0,  # the first slot is a minute (10 ms) away: no catch-up
            served=None,
            retune_seq=0,
            orchestrator=orchestrator,
            supervisor=supervisor,
            fires_in_flight=Activity(),
        )
    )
    timer.attach(refs[-1])
    try:
        expects: list[tuple[float, Expect]] = []
        fired: list[RequestSync] = []
        while len(fired) < 3:
            at, message = got.get(timeout=5.0)
            if isinstance(message, Expect):
                expects.append((at, message))
            elif isinstance(message, RequestSync):
                fired.append(message)
        for request in fired:
            assert request.scheduled_at is not None
            told = [at for at, expect in expects if expect.until == request.scheduled_at + clock.heads_up]
            assert told and told[0] < request.scheduled_at, (request, expects)
    finally:
        for ref in refs:
            ref.stop(timeout=5.0)
        # The last slot's bookkeeping may still be armed for a moment: then the dispatcher ends.
        give_up = time.monotonic() + 5.0
        while not clock.join(1.0):
            assert time.monotonic() < give_up, "the clock's dispatcher never ended"
            threading.Event().wait(0.01)


def test_a_stray_stay_awake_message_on_a_manual_clock_changes_nothing(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service(schedule={t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()})
    assert clock.heads_up == 0.0  # nothing on a ManualClock sends it
    service._tell("orchestrator", Expect(until=clock.now() + DAY))
    clock.advance(0.0)  # quiet again at once: simulated time does not pass while a thread waits
    assert service.request_sync("orders") == {"syncType": "orders", "coalesced": False}
    clock.advance(0.0)
    assert [run["trigger"] for run in service.history("orders")] == ["manual"]
