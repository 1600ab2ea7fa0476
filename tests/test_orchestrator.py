"""The orchestrator on the ManualClock: one at a time, coalescing, order, timeouts, holds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import Recorder

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, SyncService

MIN = 60.0
PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}


def test_manual_requests_coalesce_and_follow_up_behind_the_running_type(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock, duration=10.0)
    service = make_service(recorder.handlers(), schedule=PAUSED)
    assert service.request_sync("prices") == {"syncType": "prices", "coalesced": False}
    clock.run_due()  # prices starts
    assert service.request_sync("prices") == {"syncType": "prices", "coalesced": False}  # follow-up
    assert service.request_sync("prices") == {"syncType": "prices", "coalesced": True}
    assert service.request_sync("orders") == {"syncType": "orders", "coalesced": False}
    status = service.status()
    assert status["running"]["syncType"] == "prices"
    assert [q["syncType"] for q in status["queue"]] == ["orders", "prices"]
    assert status["types"]["prices"]["state"] == "running"
    assert status["types"]["orders"]["state"] == "queued"
    assert status["types"]["prices"]["coalesced"] == 1
    clock.advance(60)
    assert [r.sync_type for r in recorder.runs] == ["prices", "orders", "prices"]
    assert recorder.overlaps == 0
    assert service.wait_idle(timeout=5)


def test_manual_first_then_priority_then_oldest(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock, duration=10.0)
    service = make_service(recorder.handlers(), schedule=PAUSED)
    service.request_sync("customers", trigger="manual")
    clock.run_due()  # customers runs; the rest queue behind it
    service.request_sync("ddt", trigger="auto")
    service.request_sync("orders", trigger="auto")
    service.request_sync("prices", trigger="manual")
    clock.advance(1)
    service.request_sync("products", trigger="manual")
    queue = [(q["syncType"], q["trigger"]) for q in service.status()["queue"]]
    # manual first (priority products 2 > prices 1), then auto by priority (orders 6 > ddt 4)
    assert queue == [("products", "manual"), ("prices", "manual"), ("orders", "auto"), ("ddt", "auto")]
    clock.advance(100)
    assert [r.sync_type for r in recorder.runs] == ["customers", "products", "prices", "orders", "ddt"]


def test_equal_priority_runs_oldest_first(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    schedule = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
    recorder = Recorder(clock, duration=5.0)
    service = make_service(recorder.handlers(), schedule=schedule)
    service.request_sync("orders")
    clock.run_due()
    for sync_type in ("invoices", "ddt"):
        service.request_sync(sync_type, trigger="auto")
        clock.advance(1)
    service.request_sync("orders", trigger="auto")  # same type as running: a follow-up
    clock.advance(60)
    assert [r.sync_type for r in recorder.runs] == ["orders", "ddt", "invoices", "orders"]


def test_failures_are_recorded_and_the_orchestrator_lives_on(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    def broken(ctx: Any) -> None:
        raise RuntimeError("ERP login refused")

    recorder = Recorder(clock)
    handlers = {**recorder.handlers(), "customers": broken}
    no_retries = {t: replace(e, retries=0) for t, e in DEFAULT_SCHEDULE.items()}  # see test_recovery
    service = make_service(handlers, schedule=no_retries)
    clock.advance(6 * MIN)
    status = service.status()
    last = status["types"]["customers"]["lastRun"]
    assert last["outcome"] == "failed"
    assert "ERP login refused" in last["error"]
    assert status["types"]["customers"]["failures"] == 1
    assert status["orchestrator"] == "running"
    clock.advance(15 * MIN)
    assert [r.scheduled_at for r in recorder.of("orders")] == [0, 10 * MIN, 20 * MIN]


def test_a_hung_coroutine_is_cancelled_at_its_timeout_and_others_go_first(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    cancelled = threading.Event()

    async def hangs(ctx: Any) -> None:
        try:
            while True:
                await ctx.sleep(3600)
        except BaseException:
            cancelled.set()
            raise

    schedule = {
        t: e.retuned(enabled=False) if t != "orders" else e.retuned(interval_minutes=5)
        for t, e in DEFAULT_SCHEDULE.items()
    }
    schedule["orders"] = DEFAULT_SCHEDULE["orders"].__class__(
        "orders", 5, 0, 6, enabled=True, timeout_seconds=7 * MIN
    )
    recorder = Recorder(clock, duration=30.0)
    handlers = {**recorder.handlers(coroutine=True), "orders": hangs}
    service = make_service(handlers, schedule=schedule)
    clock.advance(6 * MIN)  # orders hangs since T+0; its T+5 slot is a follow-up
    service.request_sync("customers", trigger="auto")
    service.request_sync("invoices", trigger="auto")
    clock.advance(1 * MIN + 1)  # timeout at T+7
    assert cancelled.is_set()
    history = service.history(sync_type="orders")
    assert [h["outcome"] for h in history] == ["timeout"]
    assert history[0]["durationMs"] == 7 * 60 * 1000
    # The requests waiting behind the hung type ran before its follow-up.
    status = service.status()
    assert status["running"]["syncType"] == "customers"
    assert [q["syncType"] for q in status["queue"]] == ["invoices", "orders"]


def test_a_hung_thread_handler_is_stopped_cooperatively(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    def hangs(ctx: Any) -> None:
        while True:
            ctx.sleep(60)

    schedule = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
    schedule["ddt"] = DEFAULT_SCHEDULE["ddt"].__class__("ddt", 45, 0, 4, timeout_seconds=120)
    service = make_service({"ddt": hangs}, schedule=schedule)
    clock.advance(2.5 * MIN)  # before its retry, a minute after the timeout
    [run] = service.history()
    assert (run["syncType"], run["outcome"], run["durationMs"]) == ("ddt", "timeout", 120_000)
    assert service.status()["running"] is None


def test_status_and_retunes_are_answered_while_a_sync_runs(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock, duration=45 * MIN)
    service = make_service(recorder.handlers())
    clock.advance(MIN)
    assert service.status(timeout=2)["running"]["syncType"] == "orders"
    schedule = service.retune("prices", interval_minutes=60, timeout=2)
    assert schedule["prices"]["interval"] == 60


def test_exclusive_hold_stops_the_running_sync_and_holds_new_ones(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock, duration=5 * MIN)
    service = make_service(recorder.handlers())
    clock.advance(MIN)
    assert service.status()["running"]["syncType"] == "orders"
    with service.exclusive():
        status = service.status()
        assert status["held"] is True
        assert status["running"] is None
        with service.exclusive():  # reference counted
            pass
        clock.advance(10 * MIN)  # customers' T+5 and orders' T+10 slots arrive: they wait
        assert [r.sync_type for r in recorder.runs] == ["orders"]
        assert {q["syncType"] for q in service.status()["queue"]} == {"orders", "customers", "prices"}
        assert service.status()["held"] is True
    clock.run_due()
    assert service.status()["held"] is False
    clock.advance(30 * MIN)
    first = service.history(sync_type="orders")[-1]
    assert first["outcome"] == "cancelled"
    # The stopped run resumes as a retry (absorbing orders' T+10 slot, one pending per type);
    # nothing that queued during the hold is lost.
    after = [(r.sync_type, r.trigger, r.scheduled_at) for r in recorder.runs[1:3]]
    assert after == [("orders", "retry", 10 * MIN), ("customers", "auto", 5 * MIN)]
    ran_or_queued = {r.sync_type for r in recorder.runs} | {q["syncType"] for q in service.status()["queue"]}
    assert {"orders", "customers", "prices"} <= ran_or_queued
    assert recorder.overlaps == 0


async def test_exclusive_works_as_async_context_manager(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service(schedule=PAUSED)
    async with service.exclusive():
        assert (await asyncio.wrap_future(service.status_future()))["held"] is True
    assert await asyncio.wait_for(asyncio.wrap_future(service.wait_idle_future()), 5)
    assert (await asyncio.wrap_future(service.status_future()))["held"] is False


def test_history_comes_from_the_ledger_newest_first(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service()
    clock.advance(24 * 60 * MIN)  # orders: 145 runs
    orders = service.history(sync_type="orders")  # the default limit: the last 100
    assert len(orders) == 100
    assert orders[0]["scheduledAt"] == "2026-01-02T00:00:00.000Z"
    assert len(service.history(sync_type="orders", limit=1000)) == 145  # the ledger keeps them all
    status = service.status()["types"]["orders"]
    assert status["runs"] == 145
    assert status["lastRun"] == orders[0]
    everything = service.history(limit=1000)
    finished = [h["finishedAt"] for h in everything]
    assert finished == sorted(finished, reverse=True)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.request_sync("stock"), LookupError),
        (lambda s: s.request_sync("orders", trigger="cron"), ValueError),
        (lambda s: s.retune("orders"), ValueError),
        (lambda s: s.retune("orders", interval_minutes=2), ValueError),
        (lambda s: s.retune("nope", interval_minutes=20), LookupError),
        (lambda s: s.history(limit=0), ValueError),
        (lambda s: s.inject_fault("supervisor"), LookupError),
    ],
)
def test_bad_arguments_raise_with_the_field_named(
    make_service: Callable[..., SyncService], call: Callable[[SyncService], object], error: type[Exception]
) -> None:
    service = make_service(schedule=PAUSED)
    before = service.schedule()
    with pytest.raises(error):
        call(service)
    assert service.schedule() == before
