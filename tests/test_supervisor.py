"""Supervision on the ManualClock: restarts with backoff, intensity limit, no lost requests."""

from __future__ import annotations

from collections.abc import Callable

from conftest import Recorder

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, SyncService

MIN = 60.0


def test_a_crashed_timer_restarts_and_fires_its_next_slot_exactly_once(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    clock.advance(3 * MIN)
    service.inject_fault("orders")
    clock.run_due()
    assert service.status()["types"]["orders"]["timer"] == "restarting"
    clock.advance(0.1)  # first backoff
    types = service.status()["types"]["orders"]
    assert (types["timer"], types["restarts"]) == ("running", 1)
    clock.advance(30 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 10 * MIN, 20 * MIN, 30 * MIN]


def test_a_timer_down_across_its_slot_catches_up_once(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    clock.advance(10 * MIN - 0.05)
    service.inject_fault("orders")
    clock.advance(1 * MIN)  # restarted at T+10:00.05, after its slot passed
    runs = [(r.scheduled_at, r.started) for r in recorder.of("orders")]
    assert runs == [(0, 0), (10 * MIN, 10 * MIN - 0.05 + 0.1)]
    clock.advance(10 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 10 * MIN, 20 * MIN]


def test_past_the_intensity_a_timer_stays_failed_and_the_others_go_on(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    delays = []
    for _ in range(5):
        service.inject_fault("customers")
        clock.run_due()
        assert service.status()["types"]["customers"]["timer"] == "restarting"
        deadline = clock.next_deadline()
        assert deadline is not None
        delays.append(round(deadline - clock.now(), 6))
        clock.advance_to(deadline)
        assert service.status()["types"]["customers"]["timer"] == "running"
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6]  # exponential backoff on the service clock
    service.inject_fault("customers")  # sixth failure within 60 s
    clock.advance(60)
    status = service.status()
    assert status["types"]["customers"]["timer"] == "failed"
    assert status["types"]["customers"]["restarts"] == 5
    assert service.health() == {"status": "degraded", "failed": ["customers"], "stale": [], "failing": []}
    clock.advance(60 * MIN)
    assert recorder.of("customers") == []
    assert [r.scheduled_at for r in recorder.of("orders")] == [k * 10 * MIN for k in range(7)]
    assert [r.scheduled_at for r in recorder.of("products")] == [30 * MIN]
    # A retune of the failed type is still stored and answered, not left hanging.
    assert service.retune("customers", interval_minutes=15)["customers"]["nextRunAt"] is None


def test_restarts_spread_over_time_never_exhaust_the_intensity(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service()
    for _ in range(8):
        service.inject_fault("ddt")
        clock.advance(20)
    status = service.status()["types"]["ddt"]
    assert (status["timer"], status["restarts"]) == ("running", 8)


def test_a_crashed_orchestrator_comes_back_with_its_queue_and_running_sync(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    schedule = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
    recorder = Recorder(clock, duration=60.0)
    service = make_service(recorder.handlers(), schedule=schedule)
    service.request_sync("orders")
    clock.run_due()
    service.request_sync("prices")
    service.request_sync("ddt")
    service.inject_fault("orchestrator")
    clock.run_due()
    assert service.health() == {"status": "ok"}  # restarting is not failed
    # Sent while it is down: kept for the next incarnation, answered once it is back.
    accepted = service.request_sync_future("invoices")
    clock.advance(0.1)
    assert accepted.result(5) == {"syncType": "invoices", "coalesced": False}
    status = service.status()
    assert status["orchestrator"] == "running"
    assert status["running"]["syncType"] == "orders"
    assert [q["syncType"] for q in status["queue"]] == ["ddt", "invoices", "prices"]  # by priority
    clock.advance(10 * MIN)
    assert [r.sync_type for r in recorder.runs] == ["orders", "ddt", "invoices", "prices"]
    assert [h["outcome"] for h in service.history()] == ["success"] * 4
    assert recorder.overlaps == 0


def test_an_orchestrator_down_for_good_still_reports_status(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service()
    for _ in range(6):
        service.inject_fault("orchestrator")
        clock.advance(5)
    status = service.status()
    assert status["orchestrator"] == "failed"
    assert service.health()["failed"] == ["orchestrator"]
